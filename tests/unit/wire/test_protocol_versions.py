"""Protocol negotiation (issue 18): a fleet on mixed agent versions keeps working."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from edgefleet.wire.messages import (
    MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
    DeviceFacts,
    Hello,
    Welcome,
    decode,
    encode,
)


def _welcome(protocol: int | None) -> Welcome:
    return Welcome(
        device_id="d", name="n", project="p", heartbeat_interval=10,
        server_time=datetime.now(UTC), protocol=protocol,
    )  # fmt: skip


def test_a_protocol_1_agent_gets_a_welcome_without_fields_it_does_not_know() -> None:
    # Protocol-1 agents decode with extra="forbid": an unknown key would drop them.
    assert "protocol" not in json.loads(encode(_welcome(None)))


def test_newer_agents_learn_the_protocol_both_speak() -> None:
    text = encode(_welcome(PROTOCOL_VERSION))
    welcome = decode(text)
    assert isinstance(welcome, Welcome) and welcome.protocol == PROTOCOL_VERSION
    assert MIN_PROTOCOL_VERSION <= PROTOCOL_VERSION


def test_hello_of_an_older_agent_without_upgrade_facts_still_decodes() -> None:
    old = {"type": "hello", "protocol": 1, "facts": {"agent_version": "0.0.9"}}
    hello = decode(json.dumps(old))
    assert isinstance(hello, Hello) and hello.protocol == 1 and hello.facts.upgrade is None
    # and facts carrying a field this side does not know are accepted (facts ignore extras)
    assert DeviceFacts.model_validate({"agent_version": "9", "future": 1}).agent_version == "9"
