"""The batch logic of agent upgrades, without a server: what happens next
given what the devices report."""

from __future__ import annotations

from typing import Any

from edgefleet.server.agent_releases.rollout import INSTALL_GRACE, Seen, advance

V = "2.0.0"


def _entries(n: int, per_batch: int) -> list[dict[str, Any]]:
    return [
        {"pk": i, "id": f"d{i}", "name": f"dev{i}", "state": "pending", "error": "", "batch": i // per_batch}
        for i in range(n)
    ]  # fmt: skip


def _healthy(*pks: int) -> dict[int, Seen]:
    return {pk: Seen(online=True, agent_version=V, report=None) for pk in pks}


def test_batches_go_one_after_the_other_only_when_healthy() -> None:
    entries, send, state, _ = advance(_entries(5, 2), V, "u1", {}, 100.0, 60)
    assert send == [0, 1] and state == "running"
    # Device 1 is still on the old version: the next batch waits.
    entries, send, state, _ = advance(entries, V, "u1", _healthy(0), 110.0, 60)
    assert send == [] and [e["state"] for e in entries[:2]] == ["healthy", "upgrading"]
    entries, send, _, _ = advance(entries, V, "u1", _healthy(0, 1), 120.0, 60)
    assert send == [2, 3]
    entries, send, _, _ = advance(entries, V, "u1", _healthy(0, 1, 2, 3), 130.0, 60)
    assert send == [4]
    entries, send, state, error = advance(entries, V, "u1", _healthy(0, 1, 2, 3, 4), 140.0, 60)
    assert (send, state, error) == ([], "done", "")


def test_a_rollback_stops_the_rollout_with_the_devices_reason() -> None:
    entries, _, _, _ = advance(_entries(4, 2), V, "u1", {}, 100.0, 60)
    report = {"version": V, "state": "rolled_back", "reason": "agent 2.0.0 exited", "attempt": "u1"}
    seen = {
        0: Seen(online=True, agent_version="1.0.0", report=report),
        1: Seen(online=True, agent_version=V, report=None),
    }
    entries, send, state, error = advance(entries, V, "u1", seen, 110.0, 60)
    assert send == [] and state == "failed"
    assert error == "device dev0: agent 2.0.0 exited"
    assert [e["state"] for e in entries] == ["failed", "healthy", "skipped", "skipped"]


def test_a_report_of_an_earlier_attempt_does_not_count() -> None:
    entries, _, _, _ = advance(_entries(1, 1), V, "u2", {}, 100.0, 60)
    old = {"version": V, "state": "rolled_back", "reason": "old", "attempt": "u1"}
    seen = {0: Seen(online=True, agent_version="1.0.0", report=old)}
    entries, _, state, _ = advance(entries, V, "u2", seen, 110.0, 60)
    assert state == "running" and entries[0]["state"] == "upgrading"


def test_a_device_that_never_comes_back_fails_after_the_deadline() -> None:
    entries, _, _, _ = advance(_entries(1, 1), V, "u1", {}, 100.0, 60)
    offline = {0: Seen(online=False, agent_version="1.0.0", report=None)}
    entries, _, state, _ = advance(entries, V, "u1", offline, 100.0 + 60 + INSTALL_GRACE - 1, 60)
    assert state == "running"
    entries, _, state, error = advance(
        entries, V, "u1", offline, 100.0 + 60 + INSTALL_GRACE + 1, 60
    )
    assert state == "failed" and "did not come back" in error
