"""Variable changes through the staged rollout, on real agents (process runtime).

A project variable that a service reads goes device by device like a version
change; a value that makes the service exit reverts the first device to the
previous value while the others never restart; a later good value goes
through from the previous one."""

from __future__ import annotations

from typing import Any

from tests.conftest import Fleet
from tests.support.procs import wait_for

COMPOSE = """
services:
  app:
    x-edgefleet-runtime: process
    command: ["sleep", "${LEVEL:-100000}"]
"""
ROLLOUT = {"max_parallel": 1, "min_healthy_time": 1, "failure_threshold": 1, "auto_revert": True}


def job(server: Any, job_id: str) -> dict[str, Any]:
    with server.client() as client:
        result: dict[str, Any] = client.job(job_id)
        return result


def started(server: Any, job_id: str) -> dict[str, str]:
    """device id -> when its service started (changes when it restarts)."""
    return {
        d["device"]: str(d["services"].get("app", {}).get("started_at"))
        for d in job(server, job_id)["devices"]
    }


def settled(server: Any, job_id: str) -> bool:
    item = job(server, job_id)
    return len(item["devices"]) == 3 and all(
        d["state"] == "running" and not d["error"] for d in item["devices"]
    )


def test_variable_change_reverts_then_goes_through(fleet: Fleet) -> None:
    server = fleet.start_server()
    key = fleet.key(labels={"role": "edge"})
    ids = [fleet.start_agent(f"var-{n}", key=key).wait_enrolled() for n in range(3)]
    with server.client() as client:
        client.create_application("varapp", "1", compose=COMPOSE)
        job_id = client.create_job("varapp", version="1", selector="role=edge", rollout=ROLLOUT)[
            "id"
        ]
    wait_for(lambda: settled(server, job_id), 60, what="3 up")
    before = started(server, job_id)

    with server.client() as client:
        client.set_variable("LEVEL", "bad")
    first = job(server, job_id)["rollout"]["batches"][0]["devices"][0]["device"]
    wait_for(lambda: job(server, job_id)["rollout"]["state"] == "reverted", 60, what="reverted")
    rollout = job(server, job_id)["rollout"]
    assert rollout["kind"] == "configuration" and rollout["failures"] == [first]
    assert rollout["changes"] == ["variable LEVEL set"]
    wait_for(lambda: settled(server, job_id), 60, what="settled after the revert")
    assert started(server, job_id) == before

    with server.client() as client:
        client.set_variable("LEVEL", "99999")
    wait_for(lambda: job(server, job_id)["rollout"]["state"] == "done", 90, what="done")
    wait_for(lambda: settled(server, job_id), 60, what="settled")
    after = started(server, job_id)
    assert all(after[d] != before[d] for d in ids), (before, after)
