"""Update locks on a real agent and Podman: a workload takes its job's lock
through its data endpoint or a lock file in its mounted lock directory; an upgrade waits (and says so in the job's status)
until the lock is released, its deadline passes, or an operator overrides."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.podman import IMAGE, containers, podman
from tests.support.procs import wait_for

pytestmark = pytest.mark.podman

V1 = f"""
services:
  app:
    image: {IMAGE}
    command: ["sh", "-c", "exec sleep 100000"]
    environment: {{RELEASE: v1}}
    stop_grace_period: 1s
"""


def version(n: int) -> str:
    return V1.replace("RELEASE: v1", f"RELEASE: v{n}")


def release_running(job_id: str) -> list[str]:
    found = []
    for c in containers(job_id):
        if c["State"] == "running":
            info = json.loads(podman("inspect", str(c["Id"])).stdout)[0]
            env = dict(item.split("=", 1) for item in info["Config"]["Env"])
            found.append(env["RELEASE"])
    return found


def in_container(job_id: str, script: str) -> str:
    running = [c for c in containers(job_id) if c["State"] == "running"]
    assert len(running) == 1, running
    return podman("exec", str(running[0]["Id"]), "sh", "-c", script).stdout.strip()


def test_upgrade_waits_for_update_lock_deadline_and_override(engine: Any, fleet: Fleet) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("locked-1", runtime="docker", env={"DOCKER_HOST": engine.url})
    device = agent.wait_enrolled()
    rollout = {"max_parallel": 1, "min_healthy_time": 0, "lock_timeout": 300}
    with server.client() as client:
        client.create_application("locked", "1", compose=V1)
        for n in (2, 3, 4, 5):
            client.add_version("locked", str(n), compose=version(n))
        job_id = client.create_job("locked", version="1", devices=[device], rollout=rollout)["id"]

    def row() -> dict[str, Any]:
        with server.client() as client:
            found: dict[str, Any] = client.job(job_id)["devices"][0]
            return found

    wait_for(lambda: release_running(job_id) == ["v1"], 90, what="v1 running")
    # The workload takes its lock (busybox wget can POST; the URL carries its token).
    taken = json.loads(in_container(job_id, 'wget -q -O- --post-data= "$EDGEFLEET_DATA_URL/lock"'))
    assert taken["held"] is True and taken["job"] == job_id
    url = urlsplit(in_container(job_id, 'echo "$EDGEFLEET_DATA_URL"'))
    lock_url = f"http://127.0.0.1:{url.port}{url.path}/lock"
    before = [c["Id"] for c in containers(job_id)]

    # 1. Released: the waiting upgrade goes at once.
    with server.client() as client:
        client.update_job(job_id, version="2")
    wait_for(
        lambda: "waiting for update lock held since" in (row()["waiting"] or ""),
        60,
        what="the wait shown in the job's status",
    )
    time.sleep(3)
    assert [c["Id"] for c in containers(job_id)] == before
    assert row()["running_version"] == "1"
    assert httpx.delete(lock_url).json()["held"] is False
    wait_for(lambda: release_running(job_id) == ["v2"], 60, what="v2 after the release")
    wait_for(lambda: row()["waiting"] is None, 30, what="no wait any more")

    # 2. Held past the job's deadline: the upgrade goes anyway.
    assert httpx.post(lock_url).json()["held"] is True
    with server.client() as client:
        client.update_job(job_id, version="3", rollout={**rollout, "lock_timeout": 4})
    wait_for(lambda: bool(row()["waiting"]), 30, what="waiting on the lock again")
    wait_for(lambda: release_running(job_id) == ["v3"], 60, what="v3 after the deadline")
    assert httpx.get(lock_url).json()["held"] is True  # the lock itself was not taken away

    # 3. An operator overrides the locks held now.
    with server.client() as client:
        client.update_job(job_id, version="4", rollout=rollout)
    wait_for(lambda: bool(row()["waiting"]), 30, what="waiting before the override")
    time.sleep(2)
    assert release_running(job_id) == ["v3"]
    with server.client() as client:
        overridden = client.rollout(job_id, "override-locks")
    assert overridden["rollout"]["locks_overridden_at"]
    wait_for(lambda: release_running(job_id) == ["v4"], 60, what="v4 after the override")

    # 4. The lock file (balena's updates.lock): created in the mounted directory
    # by the workload, deleted to let the upgrade go.
    assert httpx.delete(lock_url).json()["held"] is False
    assert in_container(job_id, 'touch "$EDGEFLEET_LOCK_FILE" && echo "$EDGEFLEET_LOCK_FILE"') == (
        "/run/edgefleet/lock/updates.lock"
    )
    assert httpx.get(lock_url).json()["held"] is True
    with server.client() as client:
        client.update_job(job_id, version="5")
    wait_for(lambda: bool(row()["waiting"]), 30, what="waiting on the lock file")
    time.sleep(2)
    assert release_running(job_id) == ["v4"]
    in_container(job_id, 'rm "$EDGEFLEET_LOCK_FILE"')
    wait_for(lambda: release_running(job_id) == ["v5"], 60, what="v5 after the file is gone")
