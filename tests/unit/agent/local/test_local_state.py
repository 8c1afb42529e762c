"""The local API's pure pieces: holds, the action journal, local apps' checks,
the OpenAPI document and the socket's permissions (no agent, no engine)."""

from __future__ import annotations

import grp
import json
import stat
from pathlib import Path

import pytest

from edgefleet.agent.http_server import HttpError
from edgefleet.agent.local.apps import LocalApps
from edgefleet.agent.local.holds import Holds
from edgefleet.agent.local.http import bind_socket
from edgefleet.agent.local.journal import Journal
from edgefleet.agent.local.openapi import document
from edgefleet.agent.runtimes.base import RuntimeSet
from edgefleet.agent.state import StateDir
from edgefleet.spec.policy import DevicePolicy


def test_hold_lasts_until_released_or_a_new_revision(tmp_path: Path) -> None:
    holds = Holds(StateDir(tmp_path))
    holds.hold("job1", "web", "rev1")
    assert Holds(StateDir(tmp_path)).held("job1", "rev1") == {"web"}  # survives a restart
    assert holds.held("job1", "rev2") == set()  # a new revision ends it
    assert holds.held("job1", "rev1") == set()  # ... for good
    holds.hold("job1", "web", "rev1")
    assert holds.release("job1", "web") is True
    assert holds.release("job1", "web") is False
    assert holds.held("job1", "rev1") == set()


def test_journal_is_bounded_and_forgets_what_the_server_has(tmp_path: Path) -> None:
    journal = Journal(StateDir(tmp_path), limit=3)
    ids = [journal.record("restart", "job1", f"s{n}").id for n in range(5)]
    assert [a.id for a in journal.pending()] == ids[2:]
    assert journal.dropped == 2
    journal.acknowledged(ids[2:4])
    again = Journal(StateDir(tmp_path), limit=3)
    assert [a.id for a in again.pending()] == ids[4:]


SIMPLE = "services:\n  a:\n    image: busybox\n"


def test_local_apps_checks_like_a_fleet_job(tmp_path: Path) -> None:
    apps = LocalApps(StateDir(tmp_path), limit=1)
    runtimes = RuntimeSet(container=None, process=None, policy=DevicePolicy())
    for name in ("../x", "A", "x" * 40, ""):
        with pytest.raises(HttpError) as bad:
            apps.run(name, SIMPLE, "1", runtimes)
        assert bad.value.status == 422 and bad.value.message.startswith("name:")
    with pytest.raises(HttpError) as refused:
        apps.run(
            "evil", SIMPLE.replace("busybox\n", "busybox\n    privileged: true\n"), "1", runtimes
        )
    assert "cannot run here" in refused.value.message and "privileged" in refused.value.message
    secret = SIMPLE + "    secrets: [token]\nsecrets:\n  token: {external: true}\n"
    with pytest.raises(HttpError) as secrets:
        apps.run("sec", secret, "1", runtimes)
    assert "secrets" in secrets.value.message
    assert apps.names() == {}
    assignment = apps.run("mine", SIMPLE, "1", runtimes)
    assert assignment.job_id == "local-mine"
    with pytest.raises(HttpError) as full:
        apps.run("second", SIMPLE, "1", runtimes)
    assert full.value.status == 409
    assert LocalApps(StateDir(tmp_path), limit=1).names() == {"mine": "local-mine"}
    assert apps.remove("mine") == "local-mine"
    with pytest.raises(HttpError):
        apps.remove("mine")


def test_openapi_document_refers_only_to_schemas_it_has() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.")
    text = json.dumps(doc)
    refs = {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}
    assert refs and refs <= set(doc["components"]["schemas"])
    assert {"/status", "/jobs", "/jobs/{job}/services/{service}/logs", "/apps"} <= set(doc["paths"])
    assert "post" in doc["paths"]["/jobs/{job}/services/{service}/stop"]


def test_socket_mode_and_state_dir_for_the_owners_group(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    sock = bind_socket(state.root / "agent.sock", None, state.root)
    sock.close()
    assert stat.S_IMODE((state.root / "agent.sock").stat().st_mode) == 0o660
    assert stat.S_IMODE(state.root.stat().st_mode) == 0o700  # no group: closed
    gid = grp.getgrnam("users").gr_gid
    sock = bind_socket(state.root / "agent.sock", "users", state.root)
    sock.close()
    info = state.root.stat()
    assert stat.S_IMODE(info.st_mode) == 0o710 and info.st_gid == gid  # traverse, not list
    assert (state.root / "agent.sock").stat().st_gid == gid
    with pytest.raises(ValueError, match="no group"):
        bind_socket(state.root / "agent.sock", "no-such-group-xyz", state.root)
