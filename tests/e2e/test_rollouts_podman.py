"""Staged rollouts on real agents and Podman: six devices, two at a time; a
broken version stops after the first batch and is reverted while the other
four devices are never touched; a good version goes through batch by batch."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import Fleet
from tests.support.podman import IMAGE, containers
from tests.support.procs import wait_for

pytestmark = pytest.mark.podman

V1 = f"""
services:
  app:
    image: {IMAGE}
    command: ["sh", "-c", "echo v1 up; exec sleep 100000"]
    stop_grace_period: 1s
"""
V2_BROKEN = V1.replace("echo v1 up; exec sleep 100000", "echo bad config; exit 3")
V3 = V1.replace("v1 up", "v3 up")


def six_devices(fleet: Fleet, engine: Any) -> tuple[Any, list[str]]:
    server = fleet.start_server()
    key = fleet.key(labels={"role": "edge"})
    agents = [
        fleet.start_agent(f"edge-{n}", key=key, runtime="docker", env={"DOCKER_HOST": engine.url})
        for n in range(6)
    ]
    return server, [a.wait_enrolled() for a in agents]


def job(server: Any, job_id: str) -> dict[str, Any]:
    with server.client() as client:
        result: dict[str, Any] = client.job(job_id)
        return result


def by_device(job_id: str) -> dict[str, tuple[str, str]]:
    """device id -> (container id, created) of the job's running containers."""
    return {
        c["Labels"]["io.edgefleet.device"]: (str(c["Id"]), str(c["Created"]))
        for c in containers(job_id)
        if c["State"] == "running"
    }


def all_on(server: Any, job_id: str, version: str) -> bool:
    item = job(server, job_id)
    return len(item["devices"]) == 6 and all(
        d["state"] == "running" and d["version"] == version and not d["error"]
        for d in item["devices"]
    )


def test_broken_version_stops_after_first_batch_and_is_reverted(engine: Any, fleet: Fleet) -> None:
    server, ids = six_devices(fleet, engine)
    rollout = {"max_parallel": 2, "min_healthy_time": 1, "failure_threshold": 1}
    with server.client() as client:
        client.create_application("staged", "1", compose=V1)
        client.add_version("staged", "2", compose=V2_BROKEN)
        client.add_version("staged", "3", compose=V3)
        job_id = client.create_job("staged", version="1", selector="role=edge", rollout=rollout)[
            "id"
        ]
    wait_for(lambda: all_on(server, job_id, "1"), 120, what="v1 on six devices")
    before = by_device(job_id)
    assert sorted(before) == sorted(ids)

    with server.client() as client:
        staged = client.update_job(job_id, version="2")["rollout"]
    assert staged["state"] == "rolling" and staged["batch_count"] == 3
    first = [d["device"] for d in staged["batches"][0]["devices"]]
    later = [d for d in ids if d not in first]
    assert len(first) == 2 and len(later) == 4

    wait_for(
        lambda: job(server, job_id)["rollout"]["state"] == "paused", 120, what="rollout paused"
    )
    paused = job(server, job_id)["rollout"]
    assert paused["batch"] == 1 and paused["failures"]
    assert "failure_threshold" in paused["reason"]
    assert {b["state"] for b in paused["batches"][1:]} == {"waiting"}
    # Each device's target is what it is told: held-back devices are told v1.
    targets = {d["device"]: d["target_version"] for d in job(server, job_id)["devices"]}
    assert {targets[d] for d in later} == {"1"} and {targets[d] for d in first} == {"2"}
    # The failed devices keep v1 running; the later batches never heard of v2.
    now = by_device(job_id)
    assert {d: now[d] for d in later} == {d: before[d] for d in later}
    assert all(d in now for d in first)

    # auto_revert on: the paused rollout reverts the first batch and the job.
    with server.client() as client:
        client.update_job(job_id, rollout={**rollout, "auto_revert": True})
    wait_for(lambda: job(server, job_id)["rollout"]["state"] == "reverted", 60, what="reverted")
    item = job(server, job_id)
    assert item["version"] == "1"
    wait_for(lambda: all_on(server, job_id, "1"), 60, what="all on v1 after revert")
    after = by_device(job_id)
    assert {d: after[d] for d in later} == {d: before[d] for d in later}

    # A good version goes through batch by batch, then everywhere.
    with server.client() as client:
        client.update_job(job_id, version="3")
    seen_partial = False
    for _ in range(240):
        item = job(server, job_id)
        versions = [d["version"] for d in item["devices"]]
        if 0 < versions.count("3") < 6 and item["rollout"]["state"] == "rolling":
            seen_partial = True
        if item["rollout"]["state"] == "done" and all_on(server, job_id, "3"):
            break
        time.sleep(0.5)
    assert item["rollout"]["state"] == "done", item["rollout"]
    assert seen_partial, "the rollout never showed some devices on v3 and others not yet"
    assert [b["state"] for b in item["rollout"]["batches"]] == ["done"] * 3
