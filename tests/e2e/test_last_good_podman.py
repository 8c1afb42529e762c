"""Last known good on a real agent and Podman: after a failed upgrade, a device
rebooted with no server (agent killed, containers gone) comes back on the
last version that ran healthy, from its own state dir."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Fleet
from tests.support.podman import IMAGE, containers, podman
from tests.support.procs import wait_for

pytestmark = pytest.mark.podman

V1 = f"""
services:
  app:
    image: {IMAGE}
    command: ["sh", "-c", "echo v1 up; exec sleep 100000"]
    environment: {{RELEASE: v1}}
    stop_grace_period: 1s
"""
V2_BROKEN = V1.replace("echo v1 up; exec sleep 100000", "echo bad config; exit 3").replace(
    "RELEASE: v1", "RELEASE: v2"
)


def release_of(container_id: str) -> str | None:
    info = json.loads(podman("inspect", container_id).stdout)[0]
    env = dict(item.split("=", 1) for item in info["Config"]["Env"])
    return env.get("RELEASE")


def running(job_id: str) -> list[dict[str, Any]]:
    return [c for c in containers(job_id) if c["State"] == "running"]


def test_rebooted_device_comes_back_on_last_good_version(engine: Any, fleet: Fleet) -> None:
    server = fleet.start_server()
    env = {"DOCKER_HOST": engine.url}
    agent = fleet.start_agent("lkg-1", runtime="docker", env=env)
    device = agent.wait_enrolled()
    with server.client() as client:
        client.create_application("lkg", "1", compose=V1)
        client.add_version("lkg", "2", compose=V2_BROKEN)
        job_id = client.create_job("lkg", version="1", devices=[device])["id"]

    def device_row() -> dict[str, Any]:
        with server.client() as client:
            row: dict[str, Any] = client.job(job_id)["devices"][0]
            return row

    wait_for(lambda: device_row()["state"] == "running", 90, what="v1 running")
    with server.client() as client:
        client.update_job(job_id, version="2")
    wait_for(
        lambda: bool(device_row()["error"]) and device_row()["running_version"] == "1",
        90,
        what="v2 failed, v1 still serving",
    )
    row = device_row()
    assert row["version"] == "1" and row["target_version"] == "2"
    saved = json.loads((agent.state_dir / "last_good.json").read_text())
    assert saved["jobs"][job_id]["version"] == "1"

    # "Reboot" with no server: the server is gone, the agent killed, the
    # engine's containers removed; desired.json names the broken version 2.
    server.stop()
    agent.kill()
    for container in containers(job_id):
        podman("rm", "-f", "-t", "0", str(container["Id"]))
    assert not containers(job_id)
    desired = json.loads((agent.state_dir / "desired.json").read_text())
    assert [j["version"] for j in desired["jobs"]] == ["2"]
    fleet.start_agent("lkg-1", key="", runtime="docker", env=env)
    wait_for(lambda: len(running(job_id)) == 1, 120, what="a workload back with no server")
    wait_for(
        lambda: [release_of(str(c["Id"])) for c in running(job_id)] == ["v1"],
        30,
        what="the last good version (v1) running",
    )

    # The server back: the device says it runs 1 while 2 is wanted, and why.
    server.start()
    wait_for(lambda: device_row()["running_version"] == "1", 60, what="status after reconnect")
    assert "code 3" in (device_row()["error"] or "")
    assert [release_of(str(c["Id"])) for c in running(job_id)] == ["v1"]
