"""Scale-out: three real server replicas on PostgreSQL and NATS behind a real
HAProxy, six real agents spread over them. Jobs, exec, logs and the app proxy
cross replicas; a replica killed mid-rollout loses nothing and doubles
nothing."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Fleet
from tests.support import postgres
from tests.support.cluster import HaproxyProc, NatsProc
from tests.support.netns import Namespace, isolated_namespaces
from tests.support.procs import ADMIN_TOKEN, AgentProc, ServerProc, free_port, wait_for


@pytest.fixture
def spaces() -> Iterator[list[Namespace]]:
    with isolated_namespaces(6) as made:
        yield made


@pytest.fixture
def pg_url() -> Iterator[str]:
    admin = postgres.ensure_server()
    url, name = postgres.fresh_database(admin)
    yield url
    postgres.drop_database(admin, name)


class Cluster:
    def __init__(self, fleet: Fleet, pg_url: str) -> None:
        self.fleet = fleet
        self.nats = NatsProc(fleet.workdir)
        fleet.procs.append(self.nats)
        self.nats.start()
        self.replicas: list[ServerProc] = []
        for i in range(3):
            server = ServerProc(
                fleet.workdir,
                database_url=pg_url,
                name=f"replica{i + 1}",
                extra_args=[
                    "--bus",
                    self.nats.url,
                    "--replica-id",
                    f"r{i + 1}",
                    "--host",
                    "0.0.0.0",
                ],
            )
            fleet.procs.append(server)
            self.replicas.append(server)
        for server in self.replicas:  # start together: migrations must not collide
            server.start(wait=False)
        for server in self.replicas:
            server.wait_ready()
        fleet.server = self.replicas[0]
        self.lb = HaproxyProc(fleet.workdir, [s.port for s in self.replicas])
        fleet.procs.append(self.lb)
        self.lb.start()

    def lb_http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.lb.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        )

    def agents(self, key: str, spaces: list[Namespace]) -> list[AgentProc]:
        """One agent per network namespace (a device of its own: its services
        bind the same ports without clashing), each preferring one replica."""
        result = []
        for i, ns in enumerate(spaces):
            urls = [f"http://{ns.host_ip}:{s.port}" for s in self.replicas]
            order = urls[i % 3 :] + urls[: i % 3]
            result.append(
                self.fleet.start_agent(
                    f"dev{i}", key=key, servers=order, runtime="process", netns=ns.name
                )
            )
        return result


def devices(http: httpx.Client) -> list[dict[str, Any]]:
    response = http.get("/api/v1/devices")
    response.raise_for_status()
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def job_state(http: httpx.Client, job_id: str) -> dict[str, Any]:
    response = http.get(f"/api/v1/jobs/{job_id}")
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def web_app(port: int) -> dict[str, Any]:
    return {
        "services": {
            "web": {
                "x-edgefleet-runtime": "process",
                "command": [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                "environment": {"PYTHONUNBUFFERED": "1"},
                "ports": [str(port)],  # the proxy reaches declared ports only
            }
        }
    }


def test_replicas_share_the_fleet_and_survive_a_replica_death(
    pg_url: str, spaces: list[Namespace], fleet: Fleet
) -> None:
    cluster = Cluster(fleet, pg_url)
    with cluster.lb_http() as http:
        key = http.post("/api/v1/provisioning-keys", json={"labels": {"fleet": "lab"}}).json()[
            "key"
        ]
    agents = cluster.agents(key, spaces)
    ids = [a.wait_enrolled() for a in agents]

    def all_online() -> bool:
        with cluster.lb_http() as http:
            return sum(d["is_online"] for d in devices(http)) == 6

    wait_for(all_online, 60, what="six devices online")
    with cluster.lb_http() as http:
        holders = {d["id"]: d["replica"] for d in devices(http)}
    assert Counter(holders.values()) == {"r1": 2, "r2": 2, "r3": 2}, holders
    # every replica sees every device online
    for replica in cluster.replicas:
        with replica.http() as http:
            assert all(d["is_online"] for d in devices(http))

    # a job created through replica 1 reaches devices held by 2 and 3
    port = free_port()
    with cluster.replicas[0].http() as http:
        assert (
            http.post(
                "/api/v1/applications", json={"name": "web", "version": "1", "spec": web_app(port)}
            ).status_code
            == 201
        )
        job = http.post(
            "/api/v1/jobs", json={"application": "web", "selector": {"fleet": "lab"}}
        ).json()

    def running(job_id: str) -> bool:
        with cluster.lb_http() as http:
            return job_state(http, job_id)["state"] == "running"

    wait_for(lambda: running(job["id"]), 60, what="job running on all six")

    on = {r: [d for d, h in holders.items() if h == r] for r in ("r1", "r2", "r3")}
    # exec through replica 2 onto a device held by replica 3
    with cluster.replicas[1].http() as http:
        response = http.post(
            f"/api/v1/devices/{on['r3'][0]}/exec", json={"command": ["echo", "hello from r3"]}
        )
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["stdout"] == "hello from r3\n"
        # the app proxy through replica 2 to a device on replica 1
        page = http.get(f"/proxy/{job['id']}/{on['r1'][0]}/web/{port}/")
        assert page.status_code == 200 and "Directory listing" in page.text
    # logs follow through replica 3 for a device held by replica 2: new lines arrive
    target = on["r2"][0]
    with (
        cluster.replicas[2].http() as http,
        http.stream(
            "GET",
            f"/api/v1/jobs/{job['id']}/logs",
            params={"device": target, "follow": "true", "tail": 0},
            timeout=httpx.Timeout(10, read=20),
        ) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()
        time.sleep(0.5)
        with cluster.replicas[0].http() as other:
            other.get(f"/proxy/{job['id']}/{target}/web/{port}/followed-marker")
        for line in lines:
            if "followed-marker" in line:
                break

    # kill -9 replica 2 in the middle of a rollout, while clients keep calling the API
    errors: list[tuple[float, int]] = []
    calls = 0
    stop = threading.Event()

    def hammer() -> None:
        nonlocal calls
        with cluster.lb_http() as http:
            while not stop.is_set():
                try:
                    status = http.get("/api/v1/devices", params={"limit": 10}).status_code
                except httpx.HTTPError:
                    status = 599
                calls += 1
                if status >= 500:
                    errors.append((time.monotonic(), status))
                time.sleep(0.05)

    load = threading.Thread(target=hammer)
    load.start()
    port2 = free_port()
    soon_end = (datetime.now(UTC) + timedelta(seconds=12)).isoformat()
    with cluster.replicas[0].http() as http:
        assert (
            http.post(
                "/api/v1/applications/web/versions", json={"version": "2", "spec": web_app(port2)}
            ).status_code
            == 201
        )
        assert http.patch(f"/api/v1/jobs/{job['id']}", json={"version": "2"}).status_code == 200
        timed = http.post(
            "/api/v1/jobs",
            json={
                "application": "web",
                "version": "1",
                "devices": [ids[0]],
                "end": soon_end,
                "name": "timed",
            },
        ).json()
    killed_at = time.monotonic()
    cluster.replicas[1].kill()

    def moved() -> bool:
        with cluster.lb_http() as http:
            found = {d["id"]: d for d in devices(http)}
        return all(found[d]["is_online"] and found[d]["replica"] in ("r1", "r3") for d in on["r2"])

    wait_for(moved, 30, interval=0.5, what="replica 2's devices back online elsewhere")
    assert time.monotonic() - killed_at < 30

    def upgraded() -> bool:
        with cluster.lb_http() as http:
            state = job_state(http, job["id"])
        return state["state"] == "running" and all(d["version"] == "2" for d in state["devices"])

    wait_for(upgraded, 60, what="rollout to v2 completed")

    def expired() -> bool:
        with cluster.lb_http() as http:
            return job_state(http, timed["id"])["state"] == "expired"

    wait_for(expired, 40, what="time-boxed job expired")
    time.sleep(3)
    stop.set()
    load.join(10)
    assert calls > 50
    late = [(t, s) for t, s in errors if t > killed_at + 3]
    assert not late, f"5xx long after the kill: {late}"

    # nothing done twice: one event per action, one workload per service per device
    with cluster.lb_http() as http:
        events = http.get("/api/v1/events", params={"limit": 1000}).json()["items"]
    kinds = Counter(e["kind"] for e in events if e.get("job") == timed["id"])
    assert kinds["job.created"] == 1 and kinds["job.expired"] == 1, kinds
    assert Counter(e["kind"] for e in events if e.get("job") == job["id"])["job.upgraded"] == 1
    for agent in agents:
        workloads = [
            p.name for p in (agent.state_dir / "processes").iterdir() if (p / "meta.json").exists()
        ]
        services = Counter(
            json.loads((agent.state_dir / "processes" / w / "meta.json").read_text())["labels"][
                "io.edgefleet.job"
            ]
            for w in workloads
        )
        assert services == {job["id"]: 1}, (agent.name, workloads)
