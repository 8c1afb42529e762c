"""Applications and jobs on real containers: two agents on Podman, deployed by
selector, upgraded, broken, cancelled, crashed mid-change, and cut off from
the server."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.podman import IMAGE, containers, podman
from tests.support.procs import wait_for

pytestmark = pytest.mark.podman

APP_V1 = f"""
services:
  web:
    image: {IMAGE}
    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
    ports: ["8080"]
    depends_on: [db]
    environment:
      GREETING: v1
    stop_grace_period: 1s
  db:
    image: {IMAGE}
    command: ["sh", "-c", "echo db up; exec sleep 100000"]
    environment: {{ROLE: database}}
    volumes: ["data:/data"]
    stop_grace_period: 1s
volumes:
  data: {{}}
"""
APP_V2 = APP_V1.replace("GREETING: v1", "GREETING: v2")
APP_V3_BROKEN = APP_V2.replace(
    '["httpd", "-f", "-p", "8080", "-h", "/var/www"]', '["sh", "-c", "echo broken config; exit 3"]'
)


def job(server: Any, job_id: str) -> dict[str, Any]:
    with server.client() as client:
        result: dict[str, Any] = client.job(job_id)
        return result


def all_running(server: Any, job_id: str, version: str, n: int) -> bool:
    item = job(server, job_id)
    devices = [d for d in item["devices"] if d["assigned"]]
    return (
        len(devices) == n
        and all(d["state"] == "running" and d["version"] == version for d in devices)
        and item["state"] == "running"
    )


def devices_online(server: Any) -> bool:
    with server.client() as client:
        return all(d["is_online"] for d in client.devices())


def env_of(container_id: str) -> dict[str, str]:
    import json

    info = json.loads(podman("inspect", container_id).stdout)[0]
    return dict(item.split("=", 1) for item in info["Config"]["Env"])


def start_pair(fleet: Fleet, engine: Any) -> tuple[Any, list[Any], list[str]]:
    server = fleet.start_server()
    key = fleet.key(labels={"role": "probe"})
    agents = [
        fleet.start_agent(name, key=key, runtime="docker", env={"DOCKER_HOST": engine.url})
        for name in ("pi-1", "pi-2")
    ]
    ids = [a.wait_enrolled() for a in agents]
    return server, agents, ids


def test_deploy_upgrade_fail_and_cancel_on_podman(engine: Any, fleet: Fleet) -> None:
    server, _agents, ids = start_pair(fleet, engine)
    with server.client() as client:
        client.create_application("probe", "1", compose=APP_V1)
        client.add_version("probe", "2", compose=APP_V2)
        client.add_version("probe", "3", compose=APP_V3_BROKEN)
        created = client.create_job("probe", version="1", selector={"role": "probe"})
    assert created["state"] in ("pending", "deploying")
    job_id = created["id"]
    wait_for(lambda: all_running(server, job_id, "1", 2), 90, what="v1 running on both")

    # Real containers, labelled, with the platform's environment.
    found = containers(job_id)
    assert len(found) == 4
    for container in found:
        labels = container["Labels"]
        assert labels["io.edgefleet.job"] == job_id
        assert labels["io.edgefleet.device"] in ids
        assert labels["io.edgefleet.service"] in ("web", "db")
        env = env_of(str(container["Id"]))
        assert env["EDGEFLEET_JOB_ID"] == job_id
        assert env["EDGEFLEET_DEVICE_ID"] == labels["io.edgefleet.device"]
        assert env["EDGEFLEET_SERVICE"] == labels["io.edgefleet.service"]
        if labels["io.edgefleet.service"] == "web":
            assert env["GREETING"] == "v1"
    # Nothing is published on the device's interfaces.
    assert all(not c.get("Ports") or all(not p.get("host_port") for p in c["Ports"]) for c in found)
    # Services reach each other by name on the job's private network.
    web = next(c for c in found if c["Labels"]["io.edgefleet.service"] == "web")
    reach = podman(
        "exec", str(web["Id"]), "sh", "-c", "ping -c1 -W2 db >/dev/null && echo ok", check=False
    )
    assert reach.stdout.strip() == "ok", reach.stderr
    status = job(server, job_id)["devices"][0]["services"]
    assert status["web"]["state"] == "running" and status["web"]["restarts"] == 0

    # Upgrade: v2 replaces v1 everywhere (start new, then stop old).
    with server.client() as client:
        client.update_job(job_id, version="2")
    wait_for(lambda: all_running(server, job_id, "2", 2), 90, what="v2 running on both")
    wait_for(lambda: len(containers(job_id)) == 4, 30, what="old containers removed")
    assert all(env_of(str(c["Id"])).get("GREETING", "v2") == "v2" for c in containers(job_id))

    # A broken v3 leaves v2 running and says why.
    with server.client() as client:
        client.update_job(job_id, version="3")

    def v3_failed() -> bool:
        devices = job(server, job_id)["devices"]
        return all(d["error"] and "exit" in d["error"] and d["version"] == "2" for d in devices)

    wait_for(v3_failed, 120, what="v3 reported as failed with v2 still serving")
    item = job(server, job_id)
    assert "code 3" in item["devices"][0]["error"]
    assert "broken config" in item["devices"][0]["error"]
    running = [c for c in containers(job_id) if c["State"] == "running"]
    assert len(running) == 4
    assert {
        env_of(str(c["Id"])).get("GREETING")
        for c in running
        if c["Labels"]["io.edgefleet.service"] == "web"
    } == {"v2"}

    # Cancel removes everything: containers, networks, volumes.
    with server.client() as client:
        cancelled = client.cancel_job(job_id)
    assert cancelled["state"] == "cancelled"
    wait_for(lambda: not containers(job_id), 60, what="containers removed")
    nets = podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert not [n for n in nets if n.startswith(f"ef-{job_id}")]
    wait_for(
        lambda: all(d["state"] == "removed" for d in job(server, job_id)["devices"]),
        30,
        what="devices report removed",
    )


def test_agent_killed_mid_deploy_converges_without_duplicates(engine: Any, fleet: Fleet) -> None:
    server, agents, _ids = start_pair(fleet, engine)
    with server.client() as client:
        client.create_application("probe", "1", compose=APP_V1)
        job_id = client.create_job("probe", selector={"role": "probe"})["id"]
    # Kill the first agent as soon as it has created anything for the job.
    wait_for(
        lambda: any(
            c["Labels"]["io.edgefleet.device"] == agents[0].device_id() for c in containers(job_id)
        ),
        60,
        interval=0.05,
        what="first container",
    )
    agents[0].kill()
    restarted = fleet.start_agent("pi-1", key="", runtime="docker", env={"DOCKER_HOST": engine.url})
    assert restarted.state_dir == agents[0].state_dir
    wait_for(lambda: all_running(server, job_id, "1", 2), 90, what="converged")
    per_device: dict[str, list[str]] = {}
    for container in containers(job_id):
        per_device.setdefault(container["Labels"]["io.edgefleet.device"], []).append(
            container["Labels"]["io.edgefleet.service"]
        )
    assert sorted(per_device.values()) == [["db", "web"], ["db", "web"]] or all(
        sorted(v) == ["db", "web"] for v in per_device.values()
    )
    # A manual `podman rm` is repaired, once.
    victim = next(c for c in containers(job_id) if c["Labels"]["io.edgefleet.service"] == "db")
    podman("rm", "-f", "-t", "0", str(victim["Id"]))
    wait_for(
        lambda: len([c for c in containers(job_id) if c["State"] == "running"]) == 4,
        60,
        what="repaired",
    )
    time.sleep(3)
    assert len(containers(job_id)) == 4


def test_workloads_survive_server_outage_and_catch_up(engine: Any, fleet: Fleet) -> None:
    server, _agents, _ids = start_pair(fleet, engine)
    with server.client() as client:
        client.create_application("probe", "1", compose=APP_V1)
        client.add_version("probe", "2", compose=APP_V2)
        job_id = client.create_job("probe", version="1", selector={"role": "probe"})["id"]
    wait_for(lambda: all_running(server, job_id, "1", 2), 90, what="running")
    before = {c["Id"] for c in containers(job_id)}
    server.stop()
    time.sleep(5)
    assert {c["Id"] for c in containers(job_id) if c["State"] == "running"} == before
    server.start()
    # Reconnecting restarts nothing.
    wait_for(lambda: devices_online(server), 60, what="agents back")
    assert {c["Id"] for c in containers(job_id) if c["State"] == "running"} == before
    # A change made after the server is back is applied.
    with server.client() as client:
        client.update_job(job_id, version="2")
    wait_for(lambda: all_running(server, job_id, "2", 2), 90, what="v2 after outage")


def test_invalid_specs_are_refused_and_nothing_is_stored(fleet: Fleet) -> None:
    server = fleet.start_server()
    with server.http() as http:
        bad = http.post(
            "/api/v1/applications",
            json={
                "project": "default",
                "name": "bad",
                "version": "1",
                "compose": "services:\n  web:\n    image: x\n    build: .\n",
            },
        )
        assert bad.status_code == 422
        body = bad.json()
        assert "build" in body["detail"]
        assert any(f["key"].endswith("build") and f["line"] == 4 for f in body["findings"])
        unknown = http.post(
            "/api/v1/applications",
            json={
                "project": "default",
                "name": "bad",
                "version": "1",
                "spec": {"services": {"web": {"image": "x", "imagee": "y"}}},
            },
        )
        assert unknown.status_code == 422 and "imagee" in unknown.json()["detail"]
        neither = http.post(
            "/api/v1/applications", json={"project": "default", "name": "bad", "version": "1"}
        )
        assert neither.status_code == 422
        assert http.get("/api/v1/applications").json()["items"] == []
        ok = http.post(
            "/api/v1/applications",
            json={"name": "good", "version": "1", "spec": {"services": {"web": {"image": "x"}}}},
        )
        assert ok.status_code == 201
        dup = http.post(
            "/api/v1/applications/good/versions",
            json={"version": "1", "spec": {"services": {"web": {"image": "y"}}}},
        )
        assert dup.status_code == 409
        missing = http.post("/api/v1/jobs", json={"application": "good", "devices": ["nope"]})
        assert missing.status_code == 422 and "nope" in missing.json()["detail"]
        both = http.post(
            "/api/v1/jobs", json={"application": "good", "devices": ["x"], "selector": {"a": "b"}}
        )
        assert both.status_code == 422
        assert http.get("/api/v1/jobs").json()["items"] == []


def test_requirements_filter_targets_and_say_why(fleet: Fleet, database_url: str | None) -> None:
    server = fleet.start_server()
    key = fleet.key(labels={"site": "a"})
    plain = fleet.start_agent("plain", key=key)
    camera = fleet.start_agent("camera", key=key, extra_args=["--peripheral", "camera=/dev/video9"])
    ids = {plain.wait_enrolled(): "plain", camera.wait_enrolled(): "camera"}
    wait_for(lambda: devices_online(server), 30, what="online")
    compose = """
services:
  cam:
    x-edgefleet-runtime: process
    command: ["sleep", "1000"]
x-edgefleet:
  requires: {peripherals: [camera]}
"""
    with server.client() as client:
        client.create_application("cam", "1", compose=compose)
        job_id = client.create_job("cam", selector={"site": "a"})["id"]
    wait_for(lambda: job(server, job_id)["state"] == "running", 60, what="running where possible")
    devices = {d["name"]: d for d in job(server, job_id)["devices"]}
    assert devices["camera"]["state"] == "running"
    assert devices["plain"]["state"] == "failed"
    assert "camera" in devices["plain"]["error"] and not devices["plain"]["eligible"]
    assert set(ids.values()) == set(devices)
    # The plain device gets a camera (its agent restarts declaring one): its new
    # facts are judged when it reconnects, not at the scheduler's next full pass.
    plain.stop()
    fleet.start_agent("plain", key=key, extra_args=["--peripheral", "camera=/dev/video7"])
    wait_for(
        lambda: (
            {d["name"]: d for d in job(server, job_id)["devices"]}["plain"]["state"] == "running"
        ),
        30,
        what="the plain device runs it once it has a camera",
    )
    # A device that later gets the label receives the job: the selector follows the fleet.
    late = fleet.start_agent(
        "late", key=fleet.key(labels={"site": "b"}), extra_args=["--peripheral", "camera"]
    )
    late_id = late.wait_enrolled()
    with server.client() as client:
        client.update_device(late_id, labels={"site": "a"})
    wait_for(
        lambda: any(
            d["device"] == late_id and d["state"] == "running"
            for d in job(server, job_id)["devices"]
        ),
        60,
        what="late device runs it",
    )
    with server.client() as client:
        client.update_device(late_id, labels={"site": "c"})
    wait_for(
        lambda: any(
            d["device"] == late_id and d["state"] == "removed"
            for d in job(server, job_id)["devices"]
        ),
        60,
        what="removed when it stops matching",
    )


def test_time_boxed_job_starts_and_expires(fleet: Fleet, database_url: str | None) -> None:
    from datetime import UTC, datetime, timedelta

    server = fleet.start_server()
    agent = fleet.start_agent("timed", key=fleet.key())
    device = agent.wait_enrolled()
    now = datetime.now(UTC)
    with server.client() as client:
        client.create_application(
            "tick",
            "1",
            spec={
                "services": {"t": {"x-edgefleet-runtime": "process", "command": ["sleep", "1000"]}}
            },
        )
        created = client.create_job(
            "tick",
            devices=[device],
            start=(now + timedelta(seconds=4)).isoformat(),
            end=(now + timedelta(seconds=12)).isoformat(),
        )
    assert created["state"] == "pending"
    assert all(d["state"] == "pending" for d in created["devices"]) or not created["devices"]
    wait_for(lambda: job(server, created["id"])["state"] == "running", 30, what="started at start")
    assert datetime.now(UTC) >= now + timedelta(seconds=4)
    wait_for(lambda: job(server, created["id"])["state"] == "expired", 30, what="expired at end")
    wait_for(
        lambda: job(server, created["id"])["devices"][0]["state"] == "removed",
        30,
        what="removed at end",
    )


def test_api_errors_name_the_field(fleet: Fleet) -> None:
    server = fleet.start_server()
    with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer x"}) as http:
        assert http.get("/api/v1/jobs").status_code == 401


FIRST_BREATH = f"""
services:
  report:
    image: {IMAGE}
    restart: "no"
    command:
      - sh
      - -c
      - 'wget -q -O- --post-data "{{\\"hello\\": 1}}" "$$EDGEFLEET_DATA_URL?stream=boot"'
"""


def test_a_workload_can_post_data_the_moment_it_starts(engine: Any, fleet: Fleet) -> None:
    """The agent listens on a job network's gateway before its first container
    runs (the bridge has no address until then): one try, no retry loop, is
    enough. A refused post would exit 1 and fail the deploy."""
    server, _agents, ids = start_pair(fleet, engine)
    with server.client() as client:
        client.create_application("boot", "1", compose=FIRST_BREATH)
        job_id = client.create_job("boot", selector={"role": "probe"})["id"]

        def posted_everywhere() -> bool:
            return {r["device"] for r in client.data(job_id, stream="boot")} == set(ids)

        wait_for(posted_everywhere, 90, interval=1, what="a record from each device")

        def exited() -> list[Any] | None:
            devices: list[Any] = client.get(f"/jobs/{job_id}")["devices"]
            done = all(d["services"].get("report", {}).get("state") == "exited" for d in devices)
            return devices if done else None

        devices = wait_for(exited, 30, interval=0.5, what="the one-shot reported exited")
    assert all(d["error"] is None for d in devices), devices
    assert all(d["services"]["report"]["exit_code"] == 0 for d in devices), devices
