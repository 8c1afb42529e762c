"""The job page shows a staged rollout's progress per batch, and its buttons
steer it (server-rendered forms with the CSRF token, as a browser sends them)."""

from __future__ import annotations

import re

import httpx

from tests.conftest import Fleet
from tests.support.procs import wait_for

SPEC = {"services": {"app": {"x-edgefleet-runtime": "process", "command": ["sleep", "3600"]}}}
PASSWORD = "correct-horse-battery"


def test_job_page_shows_rollout_batches_and_pauses_it(fleet: Fleet) -> None:
    server = fleet.start_server()
    agents = [fleet.start_agent(f"page-{n}") for n in range(2)]
    devices = [a.wait_enrolled() for a in agents]
    with server.client() as client:
        client.set_password("admin", PASSWORD)
        client.create_application("paged", "1", spec=SPEC)
        client.add_version("paged", "2", spec=SPEC)
    with server.http() as admin:
        job = admin.post(
            "/api/v1/jobs",
            json={
                "application": "paged",
                "version": "1",
                "devices": devices,
                "rollout": {"max_parallel": 1, "min_healthy_time": 600},
            },
        ).json()["id"]
        wait_for(
            lambda: admin.get(f"/api/v1/jobs/{job}").json()["state"] == "running", 60, what="up"
        )
        staged = admin.patch(f"/api/v1/jobs/{job}", json={"version": "2"}).json()["rollout"]
    assert staged["state"] == "rolling" and staged["batch_count"] == 2

    with httpx.Client(base_url=server.url, timeout=30) as browser:
        login = browser.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert csrf is not None
        signed = browser.post(
            "/login", data={"csrf": csrf.group(1), "username": "admin", "password": PASSWORD}
        )
        assert signed.status_code in (302, 303)
        page = browser.get(f"/jobs/{job}")
        assert page.status_code == 200
        assert 'data-rollout-state="rolling"' in page.text
        assert "batch 1 of 2" in page.text
        assert 'data-batch="1" data-state="in progress"' in page.text
        assert 'data-batch="2" data-state="waiting"' in page.text
        assert f'action="/jobs/{job}/rollout/pause"' in page.text
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        paused = browser.post(f"/jobs/{job}/rollout/pause", data={"csrf": token.group(1)})
        assert paused.status_code in (302, 303)
        page = browser.get(f"/jobs/{job}")
        assert 'data-rollout-state="paused"' in page.text and "paused by admin" in page.text
        assert f'action="/jobs/{job}/rollout/resume"' in page.text
        assert (
            browser.post(f"/jobs/{job}/rollout/nonsense", data={"csrf": token.group(1)}).status_code
            == 404
        )
    with server.http() as admin:
        assert admin.get(f"/api/v1/jobs/{job}").json()["rollout"]["state"] == "paused"
