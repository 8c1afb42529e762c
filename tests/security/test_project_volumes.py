"""Attacks on project volumes (issue 21): a job mounting a project volume
its project does not have (even one another project has) is refused with a
422 naming the volume and nothing is created; another project's volumes are
404; a bad or duplicate name is refused. The policy side (a Compose file
naming ``ef-proj-<other>-x`` itself) is tests/unit/spec/test_project_volumes.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Fleet

COMPOSE = """
services:
  a:
    image: busybox
    volumes: ["data:/data"]
volumes:
  data: {external: true, x-edgefleet-project-volume: true}
"""


@pytest.fixture
def server(fleet: Fleet) -> Any:
    server = fleet.start_server()
    with server.client() as admin:
        admin.create_project("q")
        admin.create_user("dev")
        admin.add_member("default", "dev", "developer")
    return server


def test_volumes_stay_in_their_project(server: Any) -> None:
    with server.client() as admin:
        token = admin.create_token("t", user="dev")["token"]
        assert admin.post("/projects/q/volumes", {"name": "data"})["name"] == "data"
    with server.http(token) as dev:
        assert dev.get("/api/v1/projects/q/volumes").status_code == 404
        assert dev.post("/api/v1/projects/q/volumes", json={"name": "x"}).status_code == 404
        bad = dev.post("/api/v1/projects/default/volumes", json={"name": "../etc"})
        assert bad.status_code == 422 and "name" in bad.text
        app = {"project": "default", "name": "thief", "version": "1", "compose": COMPOSE}
        assert dev.post("/api/v1/applications", json=app).status_code == 201
        job = {"application": "thief", "selector": {"site": "nowhere"}}
        refused = dev.post("/api/v1/jobs", json=job)
        # q's "data" is not default's: the job is refused, naming the volume
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["field"] == "volumes.data"
        assert dev.get("/api/v1/jobs").json()["items"] == []
        made = dev.post("/api/v1/projects/default/volumes", json={"name": "data"})
        assert made.status_code == 201
        again = dev.post("/api/v1/projects/default/volumes", json={"name": "data"})
        assert again.status_code == 409
        created = dev.post("/api/v1/jobs", json=job)
        assert created.status_code == 201, created.text
        with server.client() as admin:
            q_id, own_id = admin.project("q")["id"], admin.project("default")["id"]
        resolved = dev.get("/api/v1/jobs").json()["items"]
        assert len(resolved) == 1
        listed = dev.get("/api/v1/projects/default/volumes").json()["items"]
        assert [v["engine_name"] for v in listed] == [f"ef-proj-{own_id}-data"]
        assert q_id not in str(listed)
