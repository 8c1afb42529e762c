"""Project secrets, variables and configs on real containers (issue 19).

Two agents on Podman run one job whose Compose file uses a project secret, a
config fed by a variable, and ``${VAR}``s set at every level. The secret is a
file at /run/secrets/NAME inside the container, and nowhere else: not in any
API answer, event, audit entry, log, or file under the agents' state dirs.
Each device sees its own variables in the documented precedence; a rotation
replaces only the containers of the service that uses it, and a variable
only the containers of the services that name it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.podman import IMAGE, containers, podman
from tests.support.procs import wait_for

pytestmark = pytest.mark.podman

VALUE = "s3cr3t-Zq7-never-in-clear"
ROTATED = "r0tated-Kx9-never-in-clear"
COMPOSE = f"""
services:
  app:
    image: {IMAGE}
    command: ["sh", "-c", "exec sleep 100000"]
    environment:
      LEVEL: "${{LEVEL:-compose}}"
      TIER: "${{TIER:-compose}}"
      FROM_JOB: "${{FROM_JOB:-compose}}"
      DEFAULTED: "${{DEFAULTED:-compose}}"
    secrets: [db_password, {{source: db_password, target: copy.txt}}]
    configs: [{{source: conf, target: /etc/app.conf}}]
    stop_grace_period: 1s
  other:
    image: {IMAGE}
    command: ["sh", "-c", "exec sleep 100000"]
    environment: [ONLY_OTHER]
    stop_grace_period: 1s
secrets:
  db_password: {{external: true}}
configs:
  conf: {{external: true, name: APP_CONF}}
"""


def _container(job_id: str, device: str, service: str) -> dict[str, Any] | None:
    for c in containers(job_id):
        labels: dict[str, str] = c["Labels"]  # type: ignore[assignment]
        if (
            labels.get("io.edgefleet.device") == device
            and labels.get("io.edgefleet.service") == service
            and c.get("State") == "running"
        ):
            return c
    return None


def _exec(container: dict[str, Any], *argv: str) -> str:
    return podman("exec", str(container["Id"]), *argv).stdout


def _env(container: dict[str, Any]) -> dict[str, str]:
    info = json.loads(podman("inspect", str(container["Id"])).stdout)[0]
    return dict(item.split("=", 1) for item in info["Config"]["Env"])


def _everything_said(http: httpx.Client, job_id: str, device_ids: list[str]) -> str:
    """Every API answer a user could look at for this job, as one text."""
    paths = [
        f"/api/v1/jobs/{job_id}",
        "/api/v1/jobs",
        f"/api/v1/jobs/{job_id}/devices",
        "/api/v1/projects/default/secrets",
        "/api/v1/projects/default/secrets/db_password",
        "/api/v1/projects/default/variables",
        "/api/v1/events?limit=1000",
        "/api/v1/audit/exec",
        "/api/v1/applications/secretive",
        *[f"/api/v1/devices/{d}" for d in device_ids],
        *[f"/api/v1/devices/{d}/variables" for d in device_ids],
    ]
    answers = []
    for path in paths:
        got = http.get(path)
        assert got.status_code == 200, (path, got.text)
        answers.append(got.text)
    return "\n".join(answers)


def _files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_secret_is_a_file_in_the_container_and_nowhere_else(fleet: Fleet, engine: Any) -> None:
    server = fleet.start_server()
    agents = [
        fleet.start_agent(
            name,
            key=fleet.key(labels={"site": site}),
            runtime="docker",
            env={"DOCKER_HOST": engine.url},
        )
        for name, site in (("pi-1", "a"), ("pi-2", "b"))
    ]
    ids = [a.wait_enrolled() for a in agents]
    with server.http() as http:
        created = http.post(
            "/api/v1/projects/default/secrets", json={"name": "db_password", "value": VALUE}
        )
        assert created.status_code == 201, created.text
        assert VALUE not in created.text and created.json()["version"] == 1
        for name, body in (
            ("LEVEL", {"value": "project"}),
            ("TIER", {"value": "project"}),
            ("TIER", {"value": "selector", "selector": {"site": "a"}}),
            ("LEVEL", {"value": "selector", "selector": "site=a"}),
            ("APP_CONF", {"value": "listen = 8080\n"}),
        ):
            put = http.put(f"/api/v1/projects/default/variables/{name}", json=body)
            assert put.status_code == 201, put.text
        put = http.put(f"/api/v1/devices/{ids[0]}/variables/LEVEL", json={"value": "device"})
        assert put.status_code == 201, put.text
        http.post(
            "/api/v1/applications",
            json={"name": "secretive", "version": "1", "compose": COMPOSE},
        ).raise_for_status()
        made = http.post(
            "/api/v1/jobs",
            json={
                "application": "secretive",
                "selector": {},
                "environment": {"FROM_JOB": "job", "LEVEL": "job", "TIER": "job"},
            },
        )
        assert made.status_code == 201, made.text
        job_id = made.json()["id"]

        def both_running() -> bool:
            return all(_container(job_id, d, s) for d in ids for s in ("app", "other"))

        wait_for(both_running, 120, what="app and other running on both devices")
        first, second = (_container(job_id, d, "app") for d in ids)
        assert first is not None and second is not None
        # The secret: a read-only file on a tmpfs, at both targets.
        for app in (first, second):
            assert _exec(app, "cat", "/run/secrets/db_password") == VALUE
            assert _exec(app, "cat", "/run/secrets/copy.txt") == VALUE
            assert _exec(app, "cat", "/etc/app.conf") == "listen = 8080\n"
            refused = podman(
                "exec", str(app["Id"]), "sh", "-c", "echo x > /run/secrets/db_password", check=False
            )
            assert refused.returncode != 0
        # Precedence: device > selector > project > job environment > Compose defaults.
        env_a, env_b = _env(first), _env(second)
        assert (env_a["LEVEL"], env_a["TIER"]) == ("device", "selector")
        assert (env_b["LEVEL"], env_b["TIER"]) == ("project", "project")
        assert env_a["FROM_JOB"] == env_b["FROM_JOB"] == "job"
        assert env_a["DEFAULTED"] == env_b["DEFAULTED"] == "compose"
        assert VALUE not in json.dumps(env_a)
        assert "APP_CONF" not in env_a  # a variable a service does not name stays out

        # Rotation: a new version reaches the containers of the service that uses
        # it, which are replaced; the other service's containers are untouched.
        others = {d: _container(job_id, d, "other")["Id"] for d in ids}  # type: ignore[index]
        rotated = http.put("/api/v1/projects/default/secrets/db_password", json={"value": ROTATED})
        assert rotated.status_code == 200 and rotated.json()["version"] == 2, rotated.text
        assert ROTATED not in rotated.text

        def rotated_in_place() -> bool:
            app = _container(job_id, ids[0], "app")
            return app is not None and _exec(app, "cat", "/run/secrets/db_password") == ROTATED

        wait_for(rotated_in_place, 120, what="the rotated secret in the container")

        def second_rotated() -> bool:
            app = _container(job_id, ids[1], "app")
            return app is not None and _exec(app, "cat", "/run/secrets/copy.txt") == ROTATED

        wait_for(second_rotated, 60, what="pi-2 rotated")
        assert {d: _container(job_id, d, "other")["Id"] for d in ids} == others  # type: ignore[index]
        assert _container(job_id, ids[0], "app")["Id"] != first["Id"]  # type: ignore[index]

        # A variable only `other` names: only `other` is replaced, on both devices.
        apps = {d: _container(job_id, d, "app")["Id"] for d in ids}  # type: ignore[index]
        put = http.put("/api/v1/projects/default/variables/ONLY_OTHER", json={"value": "v2"})
        assert put.status_code == 201, put.text

        def other_updated() -> bool:
            found = [_container(job_id, d, "other") for d in ids]
            return all(c is not None and _env(c).get("ONLY_OTHER") == "v2" for c in found)

        wait_for(other_updated, 60, what="other restarted with ONLY_OTHER=v2")
        wait_for(
            lambda: len(containers(job_id)) == 4, 30, what="the old `other` containers retired"
        )
        assert {d: _container(job_id, d, "app")["Id"] for d in ids} == apps  # type: ignore[index]

        said = _everything_said(http, job_id, ids)
    for needle in (VALUE, ROTATED):
        assert needle not in said
        assert needle not in server.log()
        for agent in agents:
            assert needle not in agent.log()
            assert _files_holding(agent.state_dir, needle.encode()) == []
        assert _files_holding(server.data_dir, needle.encode()) == []
    desired = json.loads((agents[0].state_dir / "desired.json").read_text())
    sealed = desired["jobs"][0]["secrets"]["db_password"]
    assert sealed["version"] == 2 and sealed["sealed"].startswith("v1.")
