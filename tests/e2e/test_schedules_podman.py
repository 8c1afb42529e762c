"""Periodic jobs on a real agent with Podman: a one-shot service fired from the
device's own clock every 4 seconds (a 6-field cron with seconds), overlapping
fire times skipped, runs going on while the server is down and across an
agent killed mid-run and restarted with no server, and reported afterwards,
each once; the CLI and the portal show them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.podman import IMAGE, containers, podman
from tests.support.procs import ADMIN_TOKEN, wait_for

pytestmark = pytest.mark.podman

# Each run takes ~5 s and exits 7; fire times come every 4 s: every other one
# finds the previous run still going and is skipped (overlap: skip).
PROBE = f"""
services:
  probe:
    image: {IMAGE}
    command: ["sh", "-c", "echo measuring; sleep 5; exit 7"]
    stop_grace_period: 1s
"""


def runs(server: Any, job_id: str) -> list[dict[str, Any]]:
    with server.client() as client:
        return list(client.job_runs(job_id))


def cli(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgefleet", "--server", server.url, "--token", ADMIN_TOKEN, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def local_log(agent: Any) -> dict[str, Any]:
    path = agent.state_dir / "schedule-runs.json"
    return json.loads(path.read_text()) if path.exists() else {"pending": []}


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_periodic_one_shot_runs_offline_and_is_reported_once(engine: Any, fleet: Fleet) -> None:
    server = fleet.start_server(extra_args=["--schedule-min-period", "1"])
    docker = {"runtime": "docker", "env": {"DOCKER_HOST": engine.url}}
    agent = fleet.start_agent("pi-1", **docker)
    device = agent.wait_enrolled()
    with server.client() as client:
        client.create_application("probe", "1", compose=PROBE)
    made = cli(
        server,
        "jobs",
        "create",
        "probe",
        "--device",
        device,
        "--schedule",
        "*/4 * * * * *",
        "--timezone",
        "Europe/Paris",
        "--overlap",
        "skip",
        "-o",
        "json",
    )
    assert made.returncode == 0, made.stderr
    job = json.loads(made.stdout)
    job_id = job["id"]
    assert job["schedule"]["cron"] == "*/4 * * * * *"
    assert job["schedule"]["timezone"] == "Europe/Paris"

    # Online: runs reported with their exit code, overlapping fire times skipped.
    def seen() -> bool:
        states = {r["state"] for r in runs(server, job_id)}
        return {"failed", "skipped"} <= states

    wait_for(seen, 60, what="a run and a skipped fire time reported")
    first = runs(server, job_id)
    ran = [r for r in first if r["state"] == "failed"]
    assert all(r["exit_code"] == 7 and r["device"] == device for r in ran)
    assert all(r["services"] == {"probe": 7} for r in ran)
    assert all(at(r["finished"]) >= at(r["started"]) >= at(r["scheduled"]) for r in ran)
    # On schedule: a run starts right at its fire time, from the device's clock.
    lag = max((at(r["started"]) - at(r["scheduled"])).total_seconds() for r in ran)
    print(f"largest delay from fire time to start: {lag * 1000:.0f} ms")
    assert lag < 2.0
    assert any("still running" in (r["error"] or "") for r in first if r["state"] == "skipped")
    assert all(at(r["scheduled"]).second % 4 == 0 for r in first)
    # Between runs the job stays running, and its device shows last and next run.
    with server.client() as client:
        shown = client.job(job_id)
    assert shown["state"] == "running"
    row = shown["devices"][0]
    assert row["state"] == "running"
    assert row["last_run"]["state"] in ("failed", "skipped")
    assert at(row["next_run"]) > at(row["last_run"]["scheduled"])
    # The change queue never touches a run's containers: none is a job workload.
    assert not containers(job_id) or all(
        c["Labels"]["io.edgefleet.device"] == f"{device}.runs" for c in containers(job_id)
    )

    # Server down: the device keeps firing from its own clock and desired state,
    # also after the agent restarts with no server in reach.
    reported = {r["id"] for r in runs(server, job_id)}
    server.stop()
    down_at = time.time()
    wait_for(
        lambda: sum(1 for r in local_log(agent)["pending"] if r["state"] == "failed") >= 1,
        30,
        what="a run recorded on the device while the server is down",
    )

    # The agent is killed in the middle of a run: the run is not lost, its
    # container's real exit code is recorded by the next agent process.
    def in_flight() -> str | None:
        for run_id in local_log(agent).get("running", {}):
            found = podman("ps", "-q", "--filter", f"label=io.edgefleet.run={run_id}").stdout
            if found.strip():
                return str(run_id)
        return None

    crashed = wait_for(in_flight, 30, what="a run's container running")
    agent.kill()
    agent = fleet.start_agent("pi-1", key="", **docker)

    def settled() -> dict[str, Any] | None:
        return next((r for r in local_log(agent)["pending"] if r["id"] == crashed), None)

    recovered = wait_for(settled, 30, what="the run begun before the crash settled")
    assert recovered["state"] == "failed" and recovered["exit_code"] == 7, recovered
    wait_for(
        lambda: sum(1 for r in local_log(agent)["pending"] if r["state"] == "failed") >= 3,
        30,
        what="runs after an agent restart with no server",
    )
    offline = [r for r in local_log(agent)["pending"] if r["id"] not in reported]
    # (Some may predate the outage: made while it was up, their ack not back yet.)
    made_down = [r for r in offline if at(r["scheduled"]).timestamp() >= down_at]
    assert [r for r in made_down if r["state"] == "failed"]

    # Back: every run made offline is reported, once, and the device's log drains.
    server.start()

    def caught_up() -> bool:
        ids = [r["id"] for r in runs(server, job_id)]
        return {r["id"] for r in offline} <= set(ids)

    wait_for(caught_up, 60, what="offline runs reported after the outage")
    after = runs(server, job_id)
    ids = [r["id"] for r in after]
    assert len(ids) == len(set(ids))
    for run in offline:
        stored = next(r for r in after if r["id"] == run["id"])
        assert stored["state"] == run["state"] and stored["exit_code"] == run["exit_code"]
    assert any(r["exit_code"] == 7 for r in after if r["id"] in {o["id"] for o in offline})
    wait_for(lambda: len(local_log(agent)["pending"]) <= 2, 30, what="the device's log drained")
    listed = cli(server, "jobs", "runs", job_id, "--state", "failed", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert {r["exit_code"] for r in json.loads(listed.stdout)} == {7}
    table = cli(server, "jobs", "runs", job_id)
    assert "pi-1" in table.stdout and "skipped" in table.stdout

    # The portal's job page has the runs, with their exit codes.
    with server.client() as client:
        client.set_password("admin", "correct horse battery staple")
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        login = browser.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', login)
        assert csrf is not None
        form = {
            "csrf": csrf.group(1),
            "username": "admin",
            "password": "correct horse battery staple",
        }
        assert browser.post("/login", data=form).status_code in (302, 303)
        page = browser.get(f"/jobs/{job_id}")
    assert page.status_code == 200
    assert "*/4 * * * * *" in page.text and "Europe/Paris" in page.text
    shown_runs = re.findall(r'data-run="([^"]+)" data-state="(\w+)"', page.text)
    assert shown_runs and {state for _, state in shown_runs} <= {"ok", "failed", "skipped"}
    fresh = [r["id"] for r in runs(server, job_id)]
    positions = [fresh.index(run_id) for run_id, _ in shown_runs]
    assert positions == sorted(positions)  # newest first, as the API lists them
    assert "<td>7</td>" in page.text
