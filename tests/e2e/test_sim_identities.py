"""``edgefleet sim`` run with its defaults against one server, then another.

The simulator keeps identities per server URL, so a second server never sees
the first one's credentials; and a server that rejects a credential (a fresh
server on the same address) gets the device enrolled again with the key
given. Real servers, the real simulator process, no ``--state-dir``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.procs import ServerProc, base_env, free_port, wait_for

N = 20


def _sim(server: ServerProc, key: str, tmp: Path, log: Path) -> subprocess.Popen[bytes]:
    """The simulator with its default state dir (under ``$TMPDIR``, kept in the test)."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "edgefleet", "sim", "--server", server.url),
                *("--devices", str(N), "--provisioning-key", key),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=base_env(TMPDIR=str(tmp)),
        )


def _key(server: ServerProc) -> str:
    with server.client() as client:
        return str(client.create_key("default", labels={"kind": "sim"})["key"])


def _online_ids(server: ServerProc) -> set[str]:
    with server.http() as http:
        page = http.get("/api/v1/devices", params={"limit": 1000, "online": "true"}).json()
    return {d["id"] for d in page["items"]}


def _enrolled_events(server: ServerProc) -> int:
    with server.http() as http:
        events = http.get(
            "/api/v1/events", params={"kind": "device.enrolled", "limit": 1000}
        ).json()
    return len([e for e in events["items"] if e["kind"] == "device.enrolled"])


def _run_until_online(server: ServerProc, tmp: Path, log: Path) -> set[str]:
    sim = _sim(server, _key(server), tmp, log)
    try:
        ids: set[str] = wait_for(
            lambda: (ids := _online_ids(server)) and len(ids) == N and ids,
            90,
            what=f"{N} simulated devices online on {server.url}",
        )
        assert sim.poll() is None, log.read_text()[-2000:]
        return ids
    finally:
        sim.terminate()
        sim.wait(30)


def test_sim_keeps_identities_per_server_and_reenrolls_when_rejected(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    log = tmp_path / "sim.log"
    port = free_port()
    servers: list[ServerProc] = []
    try:
        first = ServerProc(tmp_path, port=port, name="first")
        servers.append(first)
        first.start()
        first_ids = _run_until_online(first, tmp, log)
        first.stop()

        # Another server: identities of its own, nothing borrowed from the first.
        other = ServerProc(tmp_path, name="other")
        servers.append(other)
        other.start()
        other_ids = _run_until_online(other, tmp, log)
        assert not other_ids & first_ids
        other.stop()
        sim_dirs = sorted(p.name for p in (tmp / "edgefleet-sim").iterdir())
        assert len(sim_dirs) == 2, sim_dirs

        # A fresh server on the first one's address rejects the stored
        # credentials: every device enrolls again, and all are online.
        fresh = ServerProc(tmp_path, port=port, name="fresh")
        servers.append(fresh)
        fresh.start()
        fresh_ids = _run_until_online(fresh, tmp, log)
        assert not fresh_ids & first_ids
        # The event log is written in batches a moment after the fact (a
        # device can be online before its "enrolled" event is stored).
        enrolled = wait_for(
            lambda: (n := _enrolled_events(fresh)) >= N and n,
            15,
            what=f"{N} device.enrolled events on the fresh server",
        )
        assert enrolled == N
        stored = {
            json.loads(p.read_text())["device_id"]
            for p in (tmp / "edgefleet-sim").glob("*/*/device.json")
        }
        assert fresh_ids <= stored and other_ids <= stored
    finally:
        for server in servers:
            server.stop()
