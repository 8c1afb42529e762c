"""Configuration changes through the staged rollout, on real agents and Podman.

Four devices run a job with ``max_parallel: 1`` and ``auto_revert`` whose
service refuses to start with a bad secret. Rotating the secret to that bad
value moves only the first device: it fails, the rollout reverts, that device
is told the previous secret version again (and keeps running with it), and
the other three are never touched (same containers). A good rotation then
goes through device by device."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import Fleet
from tests.support.podman import IMAGE, containers, podman
from tests.support.procs import wait_for

pytestmark = pytest.mark.podman

COMPOSE = f"""
services:
  app:
    image: {IMAGE}
    command: ["sh", "-c", "test \\"$$(cat /run/secrets/token)\\" != bad || exit 3; exec sleep 100000"]
    secrets: [token]
    stop_grace_period: 1s
secrets:
  token: {{external: true}}
"""
ROLLOUT = {"max_parallel": 1, "min_healthy_time": 2, "failure_threshold": 1, "auto_revert": True}


def running(job_id: str) -> dict[str, str]:
    """device id -> container id of the job's running containers."""
    return {
        str(c["Labels"]["io.edgefleet.device"]): str(c["Id"])  # type: ignore[index]
        for c in containers(job_id)
        if c["State"] == "running"
    }


def job(server: Any, job_id: str) -> dict[str, Any]:
    with server.client() as client:
        result: dict[str, Any] = client.job(job_id)
        return result


def token(container_id: str) -> str:
    return podman("exec", container_id, "cat", "/run/secrets/token").stdout.strip()


def settled(server: Any, job_id: str) -> bool:
    item = job(server, job_id)
    return len(item["devices"]) == 4 and all(
        d["state"] == "running" and not d["error"] for d in item["devices"]
    )


@pytest.mark.timeout(600)
def test_secret_rotation_goes_device_by_device_and_reverts(engine: Any, fleet: Fleet) -> None:
    server = fleet.start_server()
    key = fleet.key(labels={"role": "edge"})
    agents = [
        fleet.start_agent(f"cfg-{n}", key=key, runtime="docker", env={"DOCKER_HOST": engine.url})
        for n in range(4)
    ]
    ids = [a.wait_enrolled() for a in agents]
    with server.client() as client:
        client.create_secret("token", "good-1")
        client.create_application("cfg", "1", compose=COMPOSE)
        job_id = client.create_job("cfg", version="1", selector="role=edge", rollout=ROLLOUT)["id"]
    wait_for(lambda: settled(server, job_id) and len(running(job_id)) == 4, 120, what="4 up")
    before = running(job_id)
    assert sorted(before) == sorted(ids)
    assert {token(c) for c in before.values()} == {"good-1"}

    # A bad value: the first device fails, the rollout reverts, the rest never hear of it.
    with server.client() as client:
        client.rotate_secret("token", "bad")
    staged = job(server, job_id)["rollout"]
    assert staged["kind"] == "configuration" and staged["state"] in ("rolling", "reverted")
    assert staged["changes"] == ["secret token version 1 -> 2"]
    assert staged["batch_count"] == 4 and staged["from_version"] == staged["to_version"] == "1"
    first = staged["batches"][0]["devices"][0]["device"]
    wait_for(lambda: job(server, job_id)["rollout"]["state"] == "reverted", 120, what="reverted")
    reverted = job(server, job_id)["rollout"]
    assert reverted["failures"] == [first] and "failure_threshold" in reverted["reason"]
    assert reverted["holding_previous_configuration"] is True
    wait_for(lambda: settled(server, job_id), 60, what="no errors after the revert")
    after = running(job_id)
    assert after == before, "a container was replaced: only the first device may have tried"
    assert {token(c) for c in after.values()} == {"good-1"}  # the previous version, everywhere

    # A good value goes through one device at a time, from the previous version.
    with server.client() as client:
        client.rotate_secret("token", "good-3")
    seen_partial = False
    item = job(server, job_id)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        item = job(server, job_id)
        if item["rollout"]["state"] == "rolling" and not seen_partial:
            now = running(job_id)
            replaced = [d for d in ids if d in now and now[d] != before[d]]
            if 0 < len(replaced) < 4:
                seen_partial = True  # the others still run the previous secret version
                held = [d for d in ids if d not in replaced and d in now]
                assert held and all(token(now[d]) == "good-1" for d in held)
        if item["rollout"]["state"] == "done" and settled(server, job_id):
            break
        time.sleep(1)
    assert item["rollout"]["state"] == "done", item["rollout"]
    assert seen_partial, "the rotation never showed some devices moved and others not yet"
    assert [b["state"] for b in item["rollout"]["batches"]] == ["done"] * 4
    wait_for(lambda: len(running(job_id)) == 4, 30, what="one container per device")
    final = running(job_id)
    assert all(final[d] != before[d] for d in ids)
    assert {token(c) for c in final.values()} == {"good-3"}
