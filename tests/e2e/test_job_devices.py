"""``GET /jobs/{id}`` carries the per-state counts and the first 100 devices;
``GET /jobs/{id}/devices`` pages through all of them, filtered by state.
150 real agents (the simulator: the agent's own modules with the ``sim``
runtime) in one extra process."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import Fleet
from tests.support.procs import ADMIN_TOKEN, wait_for

N = 150
SIM_APP = {"services": {"app": {"image": "sim/app:1", "command": ["run"]}}}


def test_job_devices_are_counted_and_paged(fleet: Fleet, sqlite_only: None) -> None:
    server = fleet.start_server()
    key = fleet.key(labels={"kind": "sim"})
    log = open(fleet.workdir / "sim.log", "wb")  # noqa: SIM115 (closed below)
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgefleet",
            "sim",
            "--server",
            server.url,
            "--devices",
            str(N),
            "--provisioning-key",
            key,
            "--state-dir",
            str(fleet.workdir / "sim"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with server.http() as http:

            def online() -> bool:
                page = http.get("/api/v1/devices", params={"limit": 1000, "online": "true"})
                return len(page.json()["items"]) >= N

            wait_for(online, 90, what=f"{N} simulated devices online")
            app = {"project": "default", "name": "paged", "version": "1", "spec": SIM_APP}
            assert http.post("/api/v1/applications", json=app).status_code == 201
            created = http.post(
                "/api/v1/jobs",
                json={"application": "paged", "version": "1", "selector": {"kind": "sim"}},
            )
            assert created.status_code == 201, created.text
            job = created.json()["id"]

            def all_running() -> bool:
                counts = http.get(f"/api/v1/jobs/{job}").json()["device_counts"]
                return counts.get("running", 0) == N

            wait_for(all_running, 90, what="every device running")
            shown = http.get(f"/api/v1/jobs/{job}").json()
            assert shown["device_counts"] == {"running": N}
            assert len(shown["devices"]) == 100
            assert shown["devices_next"]

            seen: list[str] = []
            cursor = None
            while True:
                params: dict[str, str | int] = {"limit": 40}
                if cursor:
                    params["cursor"] = cursor
                page = http.get(f"/api/v1/jobs/{job}/devices", params=params).json()
                assert set(page) >= {"items", "next"}
                seen += [row["device"] for row in page["items"]]
                assert all(row["state"] == "running" for row in page["items"])
                assert all(row["services"]["app"]["state"] == "running" for row in page["items"])
                cursor = page["next"]
                if cursor is None:
                    break
            assert len(seen) == len(set(seen)) == N
            assert seen[:100] == [row["device"] for row in shown["devices"]]

            failed = http.get(f"/api/v1/jobs/{job}/devices", params={"state": "failed"}).json()
            assert failed == {"items": [], "next": None}
            running = http.get(f"/api/v1/jobs/{job}/devices", params={"state": "running,failed"})
            assert len(running.json()["items"]) == 100 and running.json()["next"]

            bad = http.get(f"/api/v1/jobs/{job}/devices", params={"state": "bogus"})
            assert bad.status_code == 422
            assert bad.json()["error"]["field"] == "state"
            assert "bogus" in bad.json()["error"]["message"]
            assert http.get("/api/v1/jobs/nosuchjob/devices").status_code == 404

        cli = [sys.executable, "-m", "edgefleet", "--server", server.url, "--token", ADMIN_TOKEN]
        listed = subprocess.run(
            [*cli, "jobs", "devices", job, "--state", "running", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert sorted(d["device"] for d in json.loads(listed.stdout)) == sorted(seen)
        shown_cli = subprocess.run(
            [*cli, "jobs", "show", job], capture_output=True, text=True, timeout=60
        )
        assert f"the first 100 of {N} devices" in shown_cli.stdout, shown_cli.stdout[-500:]
    finally:
        sim.terminate()
        sim.wait(20)
        log.close()
