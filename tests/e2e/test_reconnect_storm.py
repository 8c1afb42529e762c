"""A server restarted under a few hundred agents admits them at its own rate:
the rest are told when to come back (close code 4503, ``retry-after=N``), every agent returns
with the identity it had, nobody gives up and nobody enrolls again.

The agents are real (the simulator runs the agent's own modules with the
``sim`` runtime, in one process); the server is killed with SIGKILL, as a
crash would, and started again on the same data dir."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import Fleet
from tests.support.procs import ADMIN_TOKEN, ServerProc, wait_for
from tests.support.scrape import scrape, value

N = 300
RATE = 40  # connections admitted per second: a 300-agent storm must wait


def _connected(server: ServerProc) -> int:
    return int(httpx.get(f"{server.url}/api/v1/health", timeout=5).json()["agents_connected"])


def _ids(state: Path) -> dict[str, str]:
    return {
        p.parent.name: json.loads(p.read_text())["device_id"] for p in state.glob("*/device.json")
    }


def _enrollments(server: ServerProc) -> int:
    with server.http() as http:
        page = http.get("/api/v1/events", params={"kind": "device.enrolled", "limit": 1000})
    return len(page.json()["items"])


def test_restart_under_sim_agents_all_return_without_reenrolling(
    fleet: Fleet, sqlite_only: None
) -> None:
    server = fleet.start_server(extra_args=["--agent-connects-per-second", str(RATE)])
    key = fleet.key(labels={"kind": "sim"})
    state = fleet.workdir / "sim"
    log = open(fleet.workdir / "sim.log", "wb")  # noqa: SIM115 (closed below)
    sim = subprocess.Popen(
        [
            *(sys.executable, "-m", "edgefleet", "sim", "--server", server.url),
            *("--devices", str(N), "--provisioning-key", key, "--state-dir", str(state)),
            *("--rate", "100"),  # enrollment itself is not what this test is about
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: _connected(server) == N, 120, what=f"{N} agents connected")
        before = _ids(state)
        assert len(before) == N
        # The enrollment events are written just after the answers: wait for them.
        wait_for(lambda: _enrollments(server) == N, 30, what=f"{N} enrollment events")

        server.kill()
        time.sleep(2)  # every agent has noticed and is backing off
        restarted = time.monotonic()
        server.start()
        wait_for(lambda: _connected(server) == N, 120, what=f"{N} agents back")
        back_in = time.monotonic() - restarted

        assert sim.poll() is None, "the simulator gave up"
        assert _ids(state) == before  # same identities, nothing re-enrolled
        assert _enrollments(server) == N
        with server.http() as http:
            online = http.get("/api/v1/devices", params={"limit": 1000, "online": "true"})
        assert {d["id"] for d in online.json()["items"]} == set(before.values())
        # The server admitted them at its rate and told the others when to come.
        assert "agent admission:" in server.log()
        print(f"{N} agents back {back_in:.1f} s after the restart")
    finally:
        sim.terminate()
        sim.wait(30)
        log.close()
    output = (fleet.workdir / "sim.log").read_text()
    assert " 0 failed" in output and "enrolled again" not in output, output[-2000:]


def test_over_the_rate_a_connection_is_told_when_to_come_back(fleet: Fleet) -> None:
    """Before any credential check: the refusal costs the server no database work."""
    server = fleet.start_server(extra_args=["--agent-connects-per-second", "1"])
    url = server.url.replace("http://", "ws://") + "/api/v1/agent/connect"
    closes: list[tuple[int, str]] = []
    for _ in range(3):
        with connect(url, additional_headers={"Authorization": "Bearer efd_nobody"}) as ws:
            try:
                while True:
                    ws.recv(timeout=5)  # an admitted unknown credential: `revoked` first
            except ConnectionClosed as exc:
                assert exc.rcvd is not None
                closes.append((exc.rcvd.code, exc.rcvd.reason))
    assert closes[0][0] == 4401  # admitted (the bucket holds one), credential checked
    waits = [int(reason.removeprefix("retry-after=")) for code, reason in closes if code == 4503]
    assert waits and all(w >= 1 for w in waits), waits
    # an operator sees the refusals on /metrics, one per connection turned away
    samples, _ = scrape(server.url, token=ADMIN_TOKEN)
    assert value(samples, "edgefleet_agent_connections_refused_total") == len(waits)
    assert value(samples, "edgefleet_agent_connections_admitted_total") == 3 - len(waits)
