"""The agent process (agent/main.py): a first start that enrolls the device
starts again from the stored enrollment, so the daemon does not keep what
enrolling loaded (issue 18: cryptography alone is several MB of RSS)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Fleet
from tests.support.procs import wait_for


def _mapped(pid: int, needle: str) -> bool:
    return needle in Path(f"/proc/{pid}/maps").read_text()


def test_a_first_start_enrolls_then_runs_on_without_what_enrolling_loaded(fleet: Fleet) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("fresh")
    assert agent.process is not None
    device = agent.wait_enrolled()
    with server.http() as http:
        wait_for(
            lambda: http.get(f"/api/v1/devices/{device}").json()["is_online"], 30, what="online"
        )
        # The same process (exec keeps the pid), one device: the restart used the
        # stored enrollment, not the provisioning key again.
        assert agent.running
        assert [d["id"] for d in http.get("/api/v1/devices").json()["items"]] == [device]
    # cryptography's Rust library (X25519 for the device key) is gone with the
    # process that enrolled; the daemon loads it again only for what needs it.
    assert not _mapped(agent.process.pid, "cryptography")
