"""The agent's local API on a real agent with Podman workloads (issue 21):
the owner steers the device with the server stopped, through real
``edgefleet agent ...`` processes; what they did reaches the server when it is
back; a locally stopped service stays stopped through a desired-state push
of the same revision and starts again with a new revision; an owner's local
app survives every desired state from the server."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet
from tests.support.podman import IMAGE, containers, podman
from tests.support.procs import AgentProc, wait_for

pytestmark = pytest.mark.podman

APP = f"""
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "exec sleep 100000"]
    stop_grace_period: 1s
  worker:
    image: {IMAGE}
    command: ["sh", "-c", "echo hello-from-worker; i=0; while true; do i=$$((i+1)); echo tick $$i; sleep 0.5; done"]
    stop_grace_period: 1s
"""

OTHER = f"""
services:
  other:
    image: {IMAGE}
    command: ["sh", "-c", "exec sleep 100000"]
    stop_grace_period: 1s
"""

MINE = f"""
services:
  mine:
    image: {IMAGE}
    command: ["sh", "-c", "echo owner-app; exec sleep 100000"]
    stop_grace_period: 1s
"""


def agent_cli(agent: AgentProc, *args: str) -> Any:
    """A real CLI process against the agent's socket; JSON answers parsed."""
    done = subprocess.run(
        [sys.executable, "-m", "edgefleet", "agent", *args, "--state-dir", str(agent.state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout) if "-o" in args else done.stdout


def states(job_id: str) -> dict[str, str]:
    return {c["Labels"]["io.edgefleet.service"]: str(c["State"]) for c in containers(job_id)}


def started_at(job_id: str, service: str) -> str:
    found = [c for c in containers(job_id) if c["Labels"]["io.edgefleet.service"] == service]
    info = json.loads(podman("inspect", str(found[0]["Id"])).stdout)[0]
    return str(info["State"]["StartedAt"])


def test_owner_steers_the_device_without_a_server(
    engine: Any, fleet: Fleet, tmp_path: Path
) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("owned-1", runtime="docker", env={"DOCKER_HOST": engine.url})
    device = agent.wait_enrolled()
    with server.client() as client:
        client.create_application("localapi", "1", compose=APP)
        client.add_version("localapi", "2", compose=APP.replace("sleep 100000", "sleep 100001"))
        client.create_application("other", "1", compose=OTHER)
        job_id = client.create_job("localapi", version="1", devices=[device])["id"]
    wait_for(lambda: states(job_id) == {"web": "running", "worker": "running"}, 90, what="job up")

    # The owner's own app, beside the fleet's; the server sees it, read-only.
    (tmp_path / "compose.yaml").write_text(MINE)
    run = agent_cli(
        agent, "apps", "run", "-f", str(tmp_path / "compose.yaml"), "mine", "-o", "json"
    )
    assert run["job_id"] == "local-mine"
    wait_for(lambda: states("local-mine") == {"mine": "running"}, 60, what="local app up")

    def local_apps_on_server() -> list[Any]:
        with server.client() as client:
            return list(client.device(device)["local_apps"])

    shown = {"name": "mine", "job_id": "local-mine", "services": {"mine": "running"}}
    wait_for(lambda: local_apps_on_server() == [shown], 30, what="app and its state in facts")

    # --- the server goes away -------------------------------------------------------
    server.stop()
    wait_for(
        lambda: not agent_cli(agent, "status", "-o", "json")["connection"]["connected"],
        30,
        what="agent sees the server gone",
    )
    status = agent_cli(agent, "status", "-o", "json")
    assert status["device"]["id"] == device and status["jobs"] == 2 and status["local_apps"] == 1
    jobs = {j["id"]: j for j in agent_cli(agent, "jobs", "-o", "json")}
    job = jobs[job_id]
    assert job["state"] == "running" and not job["local_app"] and jobs["local-mine"]["local_app"]
    assert {s["name"]: s["state"] for s in job["services"]} == {
        "web": "running",
        "worker": "running",
    }
    assert {s["revision"] for s in job["services"]} == {job["revision"]}
    logs = agent_cli(agent, "logs", job_id, "worker", "--tail", "1000")
    assert "hello-from-worker" in logs and "tick" in logs

    # Follow: new lines keep arriving through the chunked answer.
    follow = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgefleet",
            "agent",
            "logs",
            job_id,
            "worker",
            "-f",
            "--tail",
            "0",
            "--state-dir",
            str(agent.state_dir),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert follow.stdout is not None
        ready, _, _ = select.select([follow.stdout], [], [], 15)
        assert ready, "no followed output"
        assert follow.stdout.readline().startswith(b"tick ")
    finally:
        follow.kill()
        follow.wait(10)
        if follow.stdout is not None:
            follow.stdout.close()

    before = started_at(job_id, "worker")
    agent_cli(agent, "restart", job_id, "worker")
    wait_for(lambda: states(job_id)["worker"] == "running", 30, what="worker back")
    assert started_at(job_id, "worker") != before
    stopped = agent_cli(agent, "stop", job_id, "web", "-o", "json")
    assert stopped["status"]["services"]["web"]["held_locally"] is True
    assert states(job_id)["web"] == "exited"
    held = {
        s["name"]: s
        for s in {j["id"]: j for j in agent_cli(agent, "jobs", "-o", "json")}[job_id]["services"]
    }
    assert held["web"]["held_locally"] is True and held["worker"]["state"] == "running"
    # The app run was reported at once (server up); restart and stop wait for it.
    assert agent_cli(agent, "status", "-o", "json")["actions_unreported"] == 2

    # --- the server is back: the actions are reported, the hold is shown ------------------
    server.start()

    def reported() -> list[Any]:
        with server.http() as http:
            found = http.get(
                f"/api/v1/devices/{device}/events", params={"kind": "device.local_action"}
            ).json()["items"]
        return list(found)

    wait_for(lambda: len(reported()) == 3, 60, what="local actions reported")
    by_action = {e["data"]["action"]: e for e in reported()}
    assert by_action["restart"]["job"] == job_id and by_action["stop"]["job"] == job_id
    assert by_action["app-run"]["job"] is None  # a local app is no server job
    wait_for(
        lambda: agent_cli(agent, "status", "-o", "json")["actions_unreported"] == 0,
        30,
        what="actions acknowledged",
    )

    def row() -> dict[str, Any]:
        with server.client() as client:
            found: dict[str, Any] = client.job(job_id)["devices"][0]
            return found

    wait_for(lambda: "held locally" in (row()["waiting"] or ""), 30, what="held locally shown")
    assert row()["services"]["web"]["held_locally"] is True

    # A new desired state (another job) with this job's same revision: web stays
    # stopped, and the owner's app, which no desired state names, stays running.
    with server.client() as client:
        other = client.create_job("other", version="1", devices=[device])["id"]
    wait_for(lambda: states(other) == {"other": "running"}, 60, what="other job up")
    time.sleep(5)  # several supervisor passes
    assert states(job_id) == {"web": "exited", "worker": "running"}
    assert states("local-mine") == {"mine": "running"}

    # A new revision: the held service starts again.
    with server.client() as client:
        client.update_job(job_id, version="2")
    wait_for(
        lambda: states(job_id) == {"web": "running", "worker": "running"}, 90, what="v2 running"
    )
    wait_for(lambda: not row()["services"]["web"]["held_locally"], 30, what="hold gone")
    assert states("local-mine") == {"mine": "running"}

    agent_cli(agent, "apps", "rm", "mine")
    wait_for(lambda: states("local-mine") == {}, 60, what="local app removed")
    wait_for(lambda: local_apps_on_server() == [], 30, what="app gone from the device's facts")
    assert agent_cli(agent, "apps", "list", "-o", "json") == []
