"""An agent's first start against a real server: the identity it keeps matches
what the server stored, and a refused key is reported as such."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from edgefleet.agent.agent import Agent, public_key_of
from edgefleet.agent.errors import EnrollmentRefused
from edgefleet.agent.settings import AgentSettings
from tests.conftest import Fleet


def _agent(tmp_path: Path, url: str, key: str) -> Agent:
    settings = AgentSettings(
        server=[url], provisioning_key=key, state_dir=tmp_path / "agent", name="first-start"
    )
    return Agent(settings)


def test_the_public_key_sent_is_the_one_kept(
    fleet: Fleet, tmp_path: Path, sqlite_only: None
) -> None:
    """The key pair is made once per enrollment: the public key the server
    stores is derived from the private key in the agent's device.json."""
    server = fleet.start_server()
    agent = _agent(tmp_path, server.url, fleet.key())
    identity = asyncio.run(agent.ensure_identity())
    assert agent.enrolled
    assert identity.private_key is not None
    assert identity.public_key == public_key_of(identity.private_key)
    stored = agent.state.load_identity()
    assert stored is not None and stored.public_key == identity.public_key
    with sqlite3.connect(server.data_dir / "edgefleet.db") as db:
        row = db.execute(
            "SELECT name, public_key FROM devices WHERE id = ?", (identity.device_id,)
        ).fetchone()
    assert row == ("first-start", identity.public_key)


def test_an_unknown_key_is_refused_by_name(fleet: Fleet, tmp_path: Path, sqlite_only: None) -> None:
    server = fleet.start_server()
    agent = _agent(tmp_path, server.url, "efk_not-a-key")
    with pytest.raises(EnrollmentRefused, match="provisioning key is not valid"):
        asyncio.run(agent.ensure_identity())
    assert agent.state.load_identity() is None


def test_no_server_to_enroll_with_is_named_not_a_type_error() -> None:
    """Settings refuse an empty server list; if one got through, the agent (run
    with -OO, where asserts vanish) must still say what is wrong."""
    from edgefleet.agent.enroll import enroll
    from edgefleet.agent.errors import ServerUnreachable
    from edgefleet.wire.messages import DeviceFacts

    with pytest.raises(ServerUnreachable, match="no server"):
        asyncio.run(
            enroll(
                [],
                "efk_x",
                name=None,
                labels={},
                facts=DeviceFacts(),
                public_key=None,
                context=None,
            )
        )
