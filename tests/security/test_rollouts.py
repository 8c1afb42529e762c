"""Attacks on staged rollouts and update locks: controls by roles without the
right or from another project, malformed rollout settings, and a workload
reaching for another job's update lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Fleet
from tests.support.procs import wait_for

SPEC = {"services": {"app": {"x-edgefleet-runtime": "process", "command": ["sleep", "3600"]}}}


def writes_url(path: Path) -> dict[str, Any]:
    """A workload that writes the data URL it was given (its job's token in it) to ``path``."""
    script = f'echo "$$EDGEFLEET_DATA_URL" > {path}; exec sleep 3600'  # $$: not interpolated
    return {
        "services": {"app": {"x-edgefleet-runtime": "process", "command": ["sh", "-c", script]}}
    }


def ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


def member(admin: httpx.Client, server: Any, project: str, name: str, role: str) -> httpx.Client:
    ok(admin.post("/api/v1/users", json={"name": name, "password": "correct horse battery"}))
    ok(admin.post(f"/api/v1/projects/{project}/members", json={"user": name, "role": role}))
    token = ok(admin.post("/api/v1/tokens", json={"user": name, "name": "t"}))["token"]
    return server.http(token)  # type: ignore[no-any-return]


def test_rollout_controls_need_the_right_and_the_project(fleet: Fleet) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("ro-1")
    device = agent.wait_enrolled()
    with server.http() as admin:
        ok(admin.post("/api/v1/projects", json={"name": "other"}))
        ok(admin.post("/api/v1/applications", json={"name": "a", "version": "1", "spec": SPEC}))
        ok(admin.post("/api/v1/applications/a/versions", json={"version": "2", "spec": SPEC}))
        job = ok(
            admin.post(
                "/api/v1/jobs",
                json={
                    "application": "a",
                    "version": "1",
                    "devices": [device],
                    "rollout": {"max_parallel": 1},
                },
            )
        )["id"]
        wait_for(
            lambda: ok(admin.get(f"/api/v1/jobs/{job}"))["state"] == "running", 60, what="running"
        )
        agent.stop()  # the device never answers: the rollout stays in batch 1
        rolling = ok(admin.patch(f"/api/v1/jobs/{job}", json={"version": "2"}))["rollout"]
        assert rolling["state"] == "rolling"
        viewer = member(admin, server, "default", "ro-viewer", "viewer")
        operator = member(admin, server, "default", "ro-operator", "operator")
        outsider = member(admin, server, "other", "ro-outsider", "owner")
        developer = member(admin, server, "default", "ro-dev", "developer")
        for action in ("pause", "resume", "abort", "override-locks"):
            path = f"/api/v1/jobs/{job}/rollout/{action}"
            assert viewer.post(path).status_code == 403
            assert operator.post(path).status_code == 403
            assert outsider.post(path).status_code == 404
            with server.http(None) as anonymous:
                assert anonymous.post(path).status_code == 401
        after = ok(admin.get(f"/api/v1/jobs/{job}"))
        assert after["version"] == "2" and after["rollout"]["state"] == "rolling"
        assert after["rollout"]["locks_overridden_at"] is None
        # The right role may, and a control that does not fit the state is a 409.
        assert ok(developer.post(f"/api/v1/jobs/{job}/rollout/pause"))["rollout"]["state"] == (
            "paused"
        )
        assert developer.post(f"/api/v1/jobs/{job}/rollout/pause").status_code == 200
        ok(developer.post(f"/api/v1/jobs/{job}/rollout/abort"))
        assert developer.post(f"/api/v1/jobs/{job}/rollout/resume").status_code == 409
        assert outsider.get(f"/api/v1/jobs/{job}").status_code == 404
        for client in (viewer, operator, outsider, developer):
            client.close()


def test_malformed_rollout_settings_are_refused_naming_the_field(fleet: Fleet) -> None:
    server = fleet.start_server()
    with server.http() as admin:
        ok(admin.post("/api/v1/applications", json={"name": "a", "version": "1", "spec": SPEC}))
        cases = [
            ({"max_parallel": 0}, "max_parallel"),
            ({"max_parallel": "two"}, "max_parallel"),
            ({"canaries": -1}, "canaries"),
            ({"min_healthy_time": -5}, "min_healthy_time"),
            ({"failure_threshold": 0}, "failure_threshold"),
            ({"auto_revert": "perhaps"}, "auto_revert"),
            ({"lock_timeout": 10**9}, "lock_timeout"),
            ({"max_paralel": 2}, "max_paralel"),
        ]
        for rollout, field in cases:
            body = {"application": "a", "selector": "site=x", "rollout": rollout}
            refused = admin.post("/api/v1/jobs", json=body)
            assert refused.status_code == 422, (rollout, refused.text)
            assert field in refused.json()["error"]["field"], refused.json()
        assert ok(admin.get("/api/v1/jobs"))["items"] == []
        job = ok(
            admin.post(
                "/api/v1/jobs",
                json={"application": "a", "selector": "site=x", "rollout": {"max_parallel": 3}},
            )
        )
        assert job["rollout"]["max_parallel"] == 3 and job["rollout"]["state"] == "idle"
        refused = admin.patch(f"/api/v1/jobs/{job['id']}", json={"rollout": {"canaries": "x"}})
        assert refused.status_code == 422 and "canaries" in refused.json()["error"]["field"]
        assert ok(admin.get(f"/api/v1/jobs/{job['id']}"))["rollout"]["max_parallel"] == 3


def test_a_workload_cannot_take_another_jobs_update_lock(fleet: Fleet) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("lock-1")
    leak = fleet.workdir / "attacker-url.txt"
    device = agent.wait_enrolled()
    with server.http() as admin:
        ok(admin.post("/api/v1/applications", json={"name": "a", "version": "1", "spec": SPEC}))
        ok(
            admin.post(
                "/api/v1/applications", json={"name": "b", "version": "1", "spec": writes_url(leak)}
            )
        )
        victim = ok(admin.post("/api/v1/jobs", json={"application": "a", "devices": [device]}))
        attacker = ok(admin.post("/api/v1/jobs", json={"application": "b", "devices": [device]}))

    def url_file() -> Path | None:
        return leak if leak.exists() and leak.read_text().strip() else None

    wait_for(url_file, 60, what="the attacker's workload writing its data URL")
    own = (url_file() or Path()).read_text().strip()  # http://HOST:PORT/v1/JOB/TOKEN
    assert f"/v1/{attacker['id']}/" in own
    base, _job, token = own.rsplit("/", 2)
    assert httpx.post(f"{own}/lock").json()["held"] is True  # its own: fine
    for method in ("POST", "DELETE", "GET"):
        stolen = httpx.request(method, f"{base}/{victim['id']}/{token}/lock")
        assert stolen.status_code == 404, stolen.text
    # The victim's lock is untouched: nothing waits on it.
    with server.http() as admin:
        rows = ok(admin.get(f"/api/v1/jobs/{victim['id']}"))["devices"]
    assert all(not r.get("waiting") for r in rows)
    locks = (Path(agent.state_dir) / "locks.json").read_text()
    assert victim["id"] not in locks and attacker["id"] in locks
