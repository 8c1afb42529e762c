"""Shared fixtures of the attack suite: one server with an estate to attack.

Built once per session (a server, one real agent, a handful of API calls):

- project ``sec-p`` with a device (a real agent, process runtime), an
  application with a version, a job on that device, a provisioning key and a
  registry login; users ``sec-viewer``, ``sec-developer``, ``sec-operator``
  and ``sec-owner`` hold those roles in it;
- project ``sec-q``, owned by ``sec-outsider``, who is in no way a member of
  ``sec-p`` (the strongest role elsewhere must not help).

Tests that attack this estate must not change it; ``Estate.snapshot`` lets
them prove they did not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.procs import (
    ADMIN_TOKEN,
    AgentProc,
    Proc,
    ServerProc,
    kill_process_workloads,
    stop_all,
    wait_for,
)

P = "sec-p"
Q = "sec-q"
ROLES = ("viewer", "developer", "operator", "owner")
OUTSIDER = "outsider"
PASSWORD = "correct horse battery staple"
APP_SPEC = {
    "services": {
        "web": {
            "x-edgefleet-runtime": "process",
            "command": ["sleep", "3600"],
            "ports": ["8080"],
        }
    }
}


def user_name(who: str) -> str:
    return f"sec-{who}"


@dataclass
class Estate:
    """The attacked server, its fixture data and one token per user."""

    server: ServerProc
    agent: AgentProc
    device: str = ""
    app: str = "sec-app"
    version: str = "1"
    job: str = ""
    key_id: str = ""
    registry: str = ""
    reservation: str = ""  # a shared booking of the device, far in the future
    tokens: dict[str, str] = field(default_factory=dict)  # who -> secret
    token_ids: dict[str, str] = field(default_factory=dict)  # who -> token id
    user_ids: dict[str, str] = field(default_factory=dict)  # who -> user id

    @property
    def url(self) -> str:
        return self.server.url

    def http(self, who: str | None = "admin", token: str | None = None) -> httpx.Client:
        """A client acting as ``who`` (a role of P, ``outsider`` or ``admin``);
        ``who=None`` sends ``token`` as given (None: no Authorization at all)."""
        secret = token if who is None else ADMIN_TOKEN if who == "admin" else self.tokens[who]
        return self.server.http(secret)

    def snapshot(self) -> dict[str, Any]:
        """Everything of project P an attack could change, as the admin sees it."""
        with self.http() as http:

            def get(path: str) -> Any:
                response = http.get(f"/api/v1{path}")
                response.raise_for_status()
                return response.json()

            shown = get(f"/devices/{self.device}")
            # What a user can set; the agent's reports (presence, facts) move on their own.
            device = {k: shown.get(k) for k in ("id", "name", "project", "labels", "metadata")}
            job = get(f"/jobs/{self.job}")
            return {
                "project": get(f"/projects/{P}"),
                "q": get(f"/projects/{Q}"),
                "projects": sorted(p["name"] for p in get("/projects")["items"]),
                "users": sorted(u["name"] for u in get("/users")["items"]),
                "tokens": sorted(
                    (t["id"], t["revoked_at"]) for t in get("/tokens?all=true")["items"]
                ),
                "device": device,
                "devices": sorted(d["id"] for d in get("/devices")["items"]),
                "apps": sorted(a["name"] for a in get("/applications")["items"]),
                "versions": sorted(
                    v["version"] for v in get(f"/applications/{self.app}/versions")["items"]
                ),
                "job": {k: job.get(k) for k in ("id", "state", "version", "environment", "end")},
                "jobs": sorted(j["id"] for j in get("/jobs")["items"]),
                "keys": sorted(
                    (k["id"], k.get("revoked_at")) for k in get("/provisioning-keys")["items"]
                ),
                "registries": get(f"/projects/{P}/registries")["items"],
                "computations": get("/computations")["items"],
                "testbed": [  # reservations, loans, declared peripherals (issue 20)
                    get("/reservations")["items"],
                    get(f"/devices/{self.device}/loans")["items"],
                    get(f"/projects/{P}/device-requirements")["items"],
                ],
            }


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    )
    return response.json() if response.content else None


def build_estate(workdir: Path, procs: list[Proc]) -> Estate:
    """Start the processes (each added to ``procs`` at once, for the teardown)
    and create the estate through the API, as a user would."""
    server = ServerProc(workdir, name="sec-server")
    procs.append(server)
    server.start()
    with server.http() as admin:
        for name in (P, Q):
            _ok(admin.post("/api/v1/projects", json={"name": name}))
        key = _ok(admin.post("/api/v1/provisioning-keys", json={"project": P}))
        agent = AgentProc(workdir, [server.url], key=key["key"], name="sec-device")
        estate = Estate(server=server, agent=agent)
        procs.append(agent)
        agent.start()
        estate.device = agent.wait_enrolled()
        for who in (*ROLES, OUTSIDER):
            user = _ok(
                admin.post("/api/v1/users", json={"name": user_name(who), "password": PASSWORD})
            )
            estate.user_ids[who] = user["id"]
            project, role = (Q, "owner") if who == OUTSIDER else (P, who)
            _ok(
                admin.post(
                    f"/api/v1/projects/{project}/members",
                    json={"user": user_name(who), "role": role},
                )
            )
            token = _ok(admin.post("/api/v1/tokens", json={"user": user_name(who), "name": "sec"}))
            estate.tokens[who], estate.token_ids[who] = token["token"], token["id"]
        estate.key_id = _ok(admin.post("/api/v1/provisioning-keys", json={"project": P}))["id"]
        _ok(
            admin.post(
                "/api/v1/applications",
                json={
                    "project": P,
                    "name": estate.app,
                    "version": estate.version,
                    "spec": APP_SPEC,
                },
            )
        )
        job = _ok(
            admin.post(
                "/api/v1/jobs",
                json={
                    "application": estate.app,
                    "version": estate.version,
                    "devices": [estate.device],
                },
            )
        )
        estate.job = job["id"]
        registry = _ok(
            admin.post(
                f"/api/v1/projects/{P}/registries",
                json={
                    "registry": "registry.example.test",
                    "username": "u",
                    "password": "secret-pw",
                },
            )
        )
        estate.registry = str(registry["id"])

        def device_online() -> bool:
            return bool(_ok(admin.get(f"/api/v1/devices/{estate.device}"))["is_online"])

        wait_for(device_online, 30, what="the estate's device online")
        from datetime import UTC, datetime, timedelta

        later = datetime.now(UTC) + timedelta(days=300)
        booking = {"project": P, "devices": [estate.device], "exclusive": False}
        booking |= {"start": later.isoformat(), "end": (later + timedelta(hours=1)).isoformat()}
        estate.reservation = _ok(admin.post("/api/v1/reservations", json=booking))["id"]

        def job_running() -> bool:
            return _ok(admin.get(f"/api/v1/jobs/{estate.job}"))["state"] == "running"

        # Settled before any test takes a snapshot: a state that moves on its own
        # would hide (or fake) a change made by an attack.
        wait_for(job_running, 60, what="the estate's job running")
    return estate


@pytest.fixture(scope="session")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    workdir = tmp_path_factory.mktemp("security-estate")
    procs: list[Proc] = []
    try:
        yield build_estate(workdir, procs)
    finally:
        stop_all(procs)
        kill_process_workloads(workdir)
