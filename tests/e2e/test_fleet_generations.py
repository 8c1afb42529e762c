"""After a fan-out every agent reports its new applied generation at once;
those reports are written in groups (gateway.generations), and every device
row must still end up with its own agent's generation and health. 200 real
agents (the simulator: the agent's own modules with the ``sim`` runtime) in
one extra process, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from tests.conftest import Fleet
from tests.support.procs import wait_for

N = 200
SIM_APP = {"services": {"app": {"image": "sim/app:1", "command": ["run"]}}}


def test_every_agents_applied_generation_is_stored_after_a_fan_out(
    fleet: Fleet, database_url: str | None
) -> None:
    server = fleet.start_server()
    key = fleet.key(labels={"kind": "sim"})
    log = open(fleet.workdir / "sim.log", "wb")  # noqa: SIM115 (closed below)
    sim = subprocess.Popen(
        [
            *(sys.executable, "-m", "edgefleet", "sim", "--server", server.url),
            *("--devices", str(N), "--provisioning-key", key),
            *("--state-dir", str(fleet.workdir / "sim")),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with server.http() as http:

            def devices() -> list[dict[str, Any]]:
                page = http.get("/api/v1/devices", params={"limit": 1000, "online": "true"})
                items: list[dict[str, Any]] = page.json()["items"]
                return items

            wait_for(lambda: len(devices()) >= N, 90, what=f"{N} simulated devices online")
            before = {d["id"]: d["desired_generation"] for d in devices()}
            app = {"project": "default", "name": "gen", "version": "1", "spec": SIM_APP}
            assert http.post("/api/v1/applications", json=app).status_code == 201
            created = http.post(
                "/api/v1/jobs",
                json={"application": "gen", "version": "1", "selector": {"kind": "sim"}},
            )
            assert created.status_code == 201, created.text

            def all_applied() -> bool:
                rows = devices()
                return len(rows) == N and all(
                    d["desired_generation"] > before[d["id"]]
                    and d["applied_generation"] == d["desired_generation"]
                    and d["is_ready"]  # its runtime's health stored too
                    for d in rows
                )

            wait_for(all_applied, 90, what="every device's new generation applied and stored")
    finally:
        sim.terminate()
        sim.wait(20)
        log.close()
