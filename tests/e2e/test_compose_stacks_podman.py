"""Real-world Compose files deploy unchanged: a dozen stacks in the style of
popular ones (``tests/e2e/compose/``, busybox standing in for every image),
each validated with its expected findings, deployed to two agents on Podman,
and then checked from inside the engine: services reach each other by name
and alias, start in dependency order (container start times), report their
health, and carry their limits and options (``podman inspect``). Also: two
jobs on one device never reach each other, and an upgrade honours the
dependency order again."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edgefleet.spec.compose import validate
from tests.conftest import Fleet
from tests.support.podman import containers, podman
from tests.support.procs import stop_all, wait_for

pytestmark = pytest.mark.podman

COMPOSE = Path(__file__).parent / "compose"
MiB = 1024 * 1024
Inspect = dict[str, Any]
Check = Callable[[dict[str, Inspect]], None]


def sh(container: Inspect, script: str) -> tuple[int, str]:
    done = podman("exec", str(container["Id"]), "sh", "-c", script, check=False)
    return done.returncode, done.stdout + done.stderr


def reaches(container: Inspect, host: str, port: int) -> bool:
    return sh(container, f"echo | nc -w 2 {host} {port}")[0] == 0


def reaches_soon(container: Inspect, host: str, port: int, seconds: float = 20) -> bool:
    """aardvark-dns reloads its records (and for a moment refuses queries)
    while other tests' containers come and go on the shared engine: ask again
    until it answers, bounded."""
    try:
        wait_for(lambda: reaches(container, host, port), seconds, interval=0.5)
    except AssertionError:
        return False
    return True


def started(container: Inspect) -> datetime:
    return _time(container["State"]["StartedAt"])


def finished(container: Inspect) -> datetime:
    return _time(container["State"]["FinishedAt"])


def _time(text: str) -> datetime:
    # Podman: "2026-11-23T11:34:40.502524724Z" or with a +00:00 offset; keep microseconds.
    head, _, rest = text.partition(".")
    fraction = "".join(c for c in rest.split("+")[0].split("Z")[0].split("-")[0] if c.isdigit())
    return datetime.fromisoformat(f"{head}.{(fraction or '0')[:6].ljust(6, '0')}")


@dataclass
class Stack:
    file: str
    warnings: list[tuple[str, int]] = field(default_factory=list)  # (key, line)
    exited: set[str] = field(default_factory=set)  # one-shots: exited with code 0
    healthy: set[str] = field(default_factory=set)
    reach: list[tuple[str, str, int]] = field(default_factory=list)  # from, host, port
    unreachable: list[tuple[str, str, int]] = field(default_factory=list)
    order: list[tuple[str, str, str | float]] = field(default_factory=list)
    """(first, then, how): "started" (then started after first), "finished" (after
    first exited) or seconds (then started at least that long after first)."""
    check: Check | None = None
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.file.removesuffix(".yaml")

    @property
    def text(self) -> str:
        return (COMPOSE / self.file).read_text()


def _hardened(c: dict[str, Inspect]) -> None:
    api = c["api"]
    host, config = api["HostConfig"], api["Config"]
    assert host["Memory"] == 64 * MiB
    assert host["NanoCpus"] == 500_000_000 and host["CpuQuota"] == 50_000
    assert host["PidsLimit"] == 64
    assert host["ShmSize"] == 16 * MiB
    assert host["ReadonlyRootfs"] is True and host["Init"] is True
    # Podman records the result against its default set: all dropped but the one added.
    assert "CAP_NET_BIND_SERVICE" not in host["CapDrop"] and "CAP_CHOWN" in host["CapDrop"]
    assert "no-new-privileges:true" in host["SecurityOpt"] or host["SecurityOpt"] == [
        "no-new-privileges"
    ]
    assert host["GroupAdd"] == ["65534"]
    assert {"Name": "RLIMIT_NOFILE", "Soft": 512, "Hard": 1024} in host["Ulimits"]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert "size=16777216,mode=1777" in host["Tmpfs"]["/tmp"]
    assert host["Devices"][0]["PathInContainer"] == "/dev/ttyUSB0"
    assert config["User"] == "65534:65534" and config["WorkingDir"] == "/tmp"
    assert config["StopTimeout"] == 2 and config["StopSignal"] in (15, "15", "SIGTERM")
    assert config["Labels"]["com.example.tier"] == "api"
    tmpfs = [m for m in host.get("Mounts") or [] if m.get("Target") == "/run/cache"]
    assert tmpfs or "/run/cache" in host["Tmpfs"]
    _code, out = sh(
        api,
        "id -u; awk '/open files/ {print $4}' /proc/1/limits; "
        "cat /proc/sys/net/ipv4/ip_unprivileged_port_start; "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
        "2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; "
        "test -c /dev/ttyUSB0 && echo device; touch /root-is-writable || echo read-only",
    )
    lines = out.split()
    assert lines[:3] == ["65534", "512", "0"], out
    assert str(64 * MiB) in lines and "64" in lines, out
    assert "device" in lines and "read-only" in lines, out


def _wordpress(c: dict[str, Inspect]) -> None:
    assert c["db"]["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert c["wordpress"]["Config"]["StopTimeout"] == 1


def _monitoring(c: dict[str, Inspect]) -> None:
    assert c["node-exporter"]["HostConfig"]["ReadonlyRootfs"] is True
    assert c["grafana"]["Config"]["User"] == "472"
    assert "GF_SECURITY_ADMIN_PASSWORD=admin" in c["grafana"]["Config"]["Env"]
    network = next(iter(c["prometheus"]["NetworkSettings"]["Networks"]))
    assert network.endswith("-monitoring")


def _celery(c: dict[str, Inspect]) -> None:
    env = c["worker"]["Config"]["Env"]
    assert "CONCURRENCY=2" in env and "DJANGO_SETTINGS_MODULE=app.settings" in env
    assert c["api"]["HostConfig"]["RestartPolicy"]["Name"] in ("unless-stopped", "always")
    assert c["broker"]["Config"]["Hostname"] == "rabbit"


def _nextcloud(c: dict[str, Inspect]) -> None:
    mounts = {m["Destination"]: m for m in c["app"]["Mounts"]}
    assert (
        mounts["/media"]["Name"] == "edgefleet-test-shared-media"
        and mounts["/media"]["RW"] is False
    )
    assert mounts["/var/cache/nextcloud"]["Type"] == "volume"  # anonymous
    assert mounts["/var/www/html"]["Name"].endswith("-nextcloud")
    assert "size=4194304,mode=1777" in c["app"]["HostConfig"]["Tmpfs"]["/tmp/uploads"]
    wait_for(
        lambda: sh(c["app"], "cat /var/www/html/cron.txt")[0] == 0,
        20,
        what="the cron sidecar writes into the shared volume",
    )
    assert sh(c["app"], "cat /media/hello.txt")[1].strip() == "shared by the device"


def _minio(c: dict[str, Inspect]) -> None:
    host = c["minio"]["HostConfig"]
    assert host["Memory"] == 96 * MiB and host["NanoCpus"] == 250_000_000
    assert host["PidsLimit"] == 50
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
    assert "MINIO_ROOT_USER=minio" in c["minio"]["Config"]["Env"]


def _elk(c: dict[str, Inspect]) -> None:
    host = c["elasticsearch"]["HostConfig"]
    assert {"Name": "RLIMIT_NOFILE", "Soft": 16384, "Hard": 16384} in host["Ulimits"]
    assert host["Memory"] == 128 * MiB


def _nodered(c: dict[str, Inspect]) -> None:
    config = c["node-red"]["Config"]
    assert config["User"] == "1000" and config["WorkingDir"] == "/data"
    assert config["StopSignal"] in (9, "9", "SIGKILL")
    assert config["Labels"]["org.example.flow"] == "sensors"
    assert c["node-red"]["HostConfig"]["Init"] is True


def _pihole(c: dict[str, Inspect]) -> None:
    pihole = c["pihole"]
    assert "CAP_NET_ADMIN" in pihole["HostConfig"]["CapAdd"]
    assert pihole["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert pihole["HostConfig"]["Dns"] == ["127.0.0.1", "1.1.1.1"]
    code, out = sh(pihole, "cat /proc/sys/net/ipv4/ip_forward /etc/resolv.conf /etc/hosts")
    assert code == 0 and out.split()[0] == "1", out
    assert "1.1.1.1" in out and "192.168.1.1\trouter.lan" in out.replace(" ", "\t")
    gateway = [line for line in out.splitlines() if "gateway.docker" in line]
    assert gateway and gateway[0].split()[0].count(".") == 3, out


def _batch(c: dict[str, Inspect]) -> None:
    _code, out = sh(
        c["report"], "printf 'GET /input.txt HTTP/1.0\\r\\n\\r\\n' | nc -w 2 127.0.0.1 8080"
    )
    assert "fetched\nprocessed" in out, out


STACKS = [
    Stack(
        "wordpress.yaml",
        warnings=[("version", 2), ("services.db.container_name", 6)],
        healthy={"db"},
        reach=[("wordpress", "db", 3306), ("wordpress", "wordpress-db", 3306)],
        order=[("db", "wordpress", 2.0)],
        check=_wordpress,
    ),
    Stack(
        "shop.yaml",
        exited={"migrate"},
        healthy={"db", "web"},
        reach=[("web", "db", 5432), ("web", "cache", 6379), ("cache", "web", 8000)],
        order=[
            ("db", "migrate", "started"),
            ("migrate", "web", "finished"),
            ("cache", "web", "started"),
        ],
    ),
    Stack(
        "monitoring.yaml",
        reach=[
            ("grafana", "prometheus", 9090),
            ("grafana", "prom", 9090),
            ("grafana", "metrics-store", 9090),
            ("prometheus", "alertmanager", 9093),
            ("prometheus", "node-exporter", 9100),
        ],
        order=[("prometheus", "grafana", "started")],
        check=_monitoring,
    ),
    Stack("hardened.yaml", healthy={"api"}, check=_hardened),
    Stack(
        "celery.yaml",
        reach=[("worker", "broker", 5672), ("api", "rabbitmq", 5672), ("worker", "rabbit", 5672)],
        order=[("broker", "worker", "started"), ("api", "worker", "started")],
        check=_celery,
    ),
    Stack(
        "iot.yaml",
        healthy={"mosquitto"},
        reach=[
            ("collector", "mqtt", 1883),
            ("collector", "mqtt-broker", 1883),
            ("dashboard", "collector", 8086),
            ("dashboard", "influx", 8086),
        ],
        # The dashboard is not on the broker's (internal) network, as in Compose.
        unreachable=[("dashboard", "mosquitto", 1883), ("dashboard", "mqtt", 1883)],
        order=[("mosquitto", "collector", "started"), ("collector", "dashboard", "started")],
    ),
    Stack(
        "nextcloud.yaml",
        warnings=[("volumes.media", 44)],
        reach=[("app", "db", 5432), ("app", "redis", 6379), ("cron", "app", 80)],
        order=[("db", "app", "started"), ("redis", "app", "started"), ("app", "cron", "started")],
        check=_nextcloud,
    ),
    Stack(
        "minio.yaml",
        warnings=[("services.minio.deploy.resources.reservations", 19)],
        exited={"createbuckets"},
        healthy={"minio"},
        reach=[],
        order=[("minio", "createbuckets", "started")],
        check=_minio,
    ),
    Stack(
        "elk.yaml",
        warnings=[("services.logstash.logging", 26), ("services.logstash.profiles", 29)],
        healthy={"elasticsearch"},
        reach=[("kibana", "elasticsearch", 9200), ("logstash", "elasticsearch", 9200)],
        order=[("elasticsearch", "kibana", 1.0), ("elasticsearch", "logstash", 1.0)],
        check=_elk,
    ),
    Stack("nodered.yaml", check=_nodered),
    Stack("pihole.yaml", check=_pihole),
    Stack(
        "batch.yaml",
        exited={"fetch", "process"},
        order=[("fetch", "process", "finished"), ("process", "report", "finished")],
        check=_batch,
    ),
]
GROUPS = {
    "web-db-cache-monitoring": ["wordpress.yaml", "shop.yaml", "monitoring.yaml", "hardened.yaml"],
    "workers-iot-storage": ["celery.yaml", "iot.yaml", "nextcloud.yaml", "minio.yaml"],
    "logs-appliances-batch": ["elk.yaml", "nodered.yaml", "pihole.yaml", "batch.yaml"],
}


def start_fleet(fleet: Fleet, engine: Any, n: int = 2) -> tuple[Any, list[str]]:
    server = fleet.start_server()
    key = fleet.key(labels={"site": "lab"})
    agents = [
        fleet.start_agent(
            f"pi-{i + 1}",
            key=key,
            runtime="docker",
            env={"DOCKER_HOST": engine.url},
            extra_args=[
                "--peripheral",
                "serial=/dev/zero",
                "--allow-cap",
                "NET_ADMIN",  # pihole.yaml
                "--allow-external-volume",
                "edgefleet-test-shared-media",  # nextcloud.yaml
            ],
        )
        for i in range(n)
    ]
    return server, [a.wait_enrolled() for a in agents]


def job_of(server: Any, job_id: str) -> dict[str, Any]:
    with server.client() as client:
        result: dict[str, Any] = client.job(job_id)
    return result


def running_everywhere(server: Any, job_id: str, version: str, n: int) -> bool:
    item = job_of(server, job_id)
    devices = [d for d in item["devices"] if d["assigned"]]
    return len(devices) == n and all(
        d["state"] == "running" and d["version"] == version for d in devices
    )


def inspect_job(job_id: str) -> dict[str, dict[str, Inspect]]:
    """{device: {service: podman inspect}} for the job's current containers."""
    ids = [str(c["Id"]) for c in containers(job_id)]
    found: dict[str, dict[str, Inspect]] = {}
    for info in json.loads(podman("inspect", *ids).stdout) if ids else []:
        labels = info["Config"]["Labels"]
        found.setdefault(labels["io.edgefleet.device"], {})[labels["io.edgefleet.service"]] = info
    return found


def check_stack(stack: Stack, server: Any, job_id: str, devices: list[str]) -> None:
    per_device = inspect_job(job_id)
    assert sorted(per_device) == sorted(devices), f"{stack.name}: {per_device.keys()}"

    def all_healthy() -> bool:
        # "running" does not wait for health checks, which pass on their own
        # schedule (slower on a loaded CI machine); the report must follow.
        rows = job_of(server, job_id)["devices"]
        return all(
            row["services"].get(name, {}).get("health") == "healthy"
            for row in rows
            for name in stack.healthy
        )

    if stack.healthy:
        wait_for(all_healthy, 90, interval=1, what=f"{stack.name}: {sorted(stack.healthy)} healthy")
    status = {d["device"]: d for d in job_of(server, job_id)["devices"]}
    for device, found in per_device.items():
        where = f"{stack.name} on {device}"
        for name, info in found.items():
            state = info["State"]
            if name in stack.exited:
                assert state["Status"] == "exited" and state["ExitCode"] == 0, (where, name)
                assert status[device]["services"][name]["state"] == "exited", where
            else:
                assert state["Status"] == "running", (where, name, state)
        for name in stack.healthy:
            assert status[device]["services"][name]["health"] == "healthy", (where, name)
        for source, host, port in stack.reach:
            assert reaches_soon(found[source], host, port), (
                f"{where}: {source} -> {host}:{port}",
                sh(found[source], f"nslookup {host}; echo | nc -w 2 {host} {port}; echo rc=$?"),
            )
        for source, host, port in stack.unreachable:
            assert not reaches(found[source], host, port), f"{where}: {source} -/-> {host}:{port}"
        for first, then, how in stack.order:
            after = started(found[then])
            if how == "finished":
                assert after >= finished(found[first]), f"{where}: {then} before {first} ended"
            elif how == "started":
                assert after > started(found[first]), f"{where}: {then} before {first}"
            else:
                gap = timedelta(seconds=float(how))
                assert after >= started(found[first]) + gap, f"{where}: {then} did not wait"
        if stack.check is not None:
            stack.check(found)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_stacks_deploy_unchanged_on_two_agents(engine: Any, fleet: Fleet, group: str) -> None:
    stacks = [s for s in STACKS if s.file in GROUPS[group]]
    if any(s.file == "nextcloud.yaml" for s in stacks):
        # Left over by an interrupted run? Start from a fresh one.
        podman("volume", "rm", "-f", "edgefleet-test-shared-media", check=False)
        podman(
            "volume", "create", "--label", "purpose=edgefleet-test", "edgefleet-test-shared-media"
        )
        mountpoint = podman(
            "volume", "inspect", "--format", "{{.Mountpoint}}", "edgefleet-test-shared-media"
        ).stdout.strip()
        Path(mountpoint, "hello.txt").write_text("shared by the device\n")
    try:
        server, devices = start_fleet(fleet, engine)
        jobs: dict[str, str] = {}
        with server.client() as client:
            for stack in stacks:
                # The findings, locally (`edgefleet apps validate`) and from the API.
                local = [(f.key, f.line) for f in validate(stack.text) if f.level == "warning"]
                assert local == stack.warnings, stack.file
                assert not [f for f in validate(stack.text) if f.level == "error"]
                remote = client.validate(compose=stack.text)
                assert [(f["key"], f["line"]) for f in remote["findings"]] == stack.warnings
                client.create_application(stack.name, "1", compose=stack.text)
                stored = client.version(stack.name, "1")
                assert [(w["key"], w["line"]) for w in stored["warnings"]] == stack.warnings
                jobs[stack.name] = client.create_job(
                    stack.name, selector={"site": "lab"}, environment=stack.environment
                )["id"]
        for stack in stacks:
            wait_for(
                lambda s=stack: running_everywhere(server, jobs[s.name], "1", 2),  # type: ignore[misc]
                150,
                what=f"{stack.name} running on both devices",
            )
        for stack in stacks:
            check_stack(stack, server, jobs[stack.name], devices)
        if group == "web-db-cache-monitoring":
            _upgrade_keeps_the_order(server, jobs["shop"], devices)
            _reachable_through_the_proxy(server, jobs["wordpress"], devices[0])
    finally:
        if any(s.file == "nextcloud.yaml" for s in stacks):
            # The agents first: alive, they re-deploy what cleanup removes, and
            # `podman volume rm` then raced them until it timed out (CI, loaded).
            stop_all(fleet.procs)
            engine.cleanup()
            podman("volume", "rm", "-f", "edgefleet-test-shared-media", check=False)


def _upgrade_keeps_the_order(server: Any, job_id: str, devices: list[str]) -> None:
    shop = next(s for s in STACKS if s.file == "shop.yaml")
    v2 = shop.text.replace("REDIS_URL: redis://cache:6379/0", "REDIS_URL: redis://cache:6379/1")
    with server.client() as client:
        client.add_version("shop", "2", compose=v2)
        client.update_job(job_id, version="2")
    wait_for(lambda: running_everywhere(server, job_id, "2", 2), 120, what="shop v2 everywhere")
    wait_for(lambda: len(containers(job_id)) == 8, 30, what="shop v1 retired")
    check_stack(shop, server, job_id, devices)
    for found in inspect_job(job_id).values():
        assert "REDIS_URL=redis://cache:6379/1" in found["web"]["Config"]["Env"]


def _reachable_through_the_proxy(server: Any, job_id: str, device: str) -> None:
    with server.http() as http:
        answer = http.get(f"/proxy/{job_id}/{device}/wordpress/80/")
    assert answer.status_code == 200 and "hello from busybox" in answer.text


ISOLATION = """
services:
  web:
    image: localhost/ef-busybox:test
    command: ["httpd", "-f", "-p", "80", "-h", "/var/www"]
    stop_grace_period: 1s
  probe:
    image: localhost/ef-busybox:test
    command: ["sleep", "100000"]
    init: true
"""


def _address(container: Inspect) -> str:
    return str(next(iter(container["NetworkSettings"]["Networks"].values()))["IPAddress"])


def _bridge(container: Inspect) -> str:
    """The bridge's name as the agent's rules quote it."""
    network = next(iter(container["NetworkSettings"]["Networks"]))
    found = json.loads(podman("network", "inspect", network).stdout)[0]["network_interface"]
    return f'"{found}"'


def _table(device: str) -> str:
    done = subprocess.run(
        ["nft", "list", "table", "inet", f"edgefleet_{device}"], capture_output=True, text=True
    )
    return done.stdout if done.returncode == 0 else ""


def _none_reach(*probes: tuple[Inspect, str, int]) -> None:
    """Dropped packets cost a timeout each: ask them all at once."""
    with ThreadPoolExecutor(len(probes)) as pool:
        answers = list(pool.map(lambda p: reaches(*p), probes))
    assert not any(answers), [p[1] for p, got in zip(probes, answers, strict=True) if got]


def test_two_jobs_on_one_device_never_reach_each_other(engine: Any, fleet: Fleet) -> None:
    """Kept apart by the agent's own nftables table (netavark 1.4 loses its own
    isolation rules), also across two agents sharing the engine, and again
    after the table was flushed by hand."""
    server, (device, other) = start_fleet(fleet, engine, n=2)
    with server.client() as client:
        client.create_application("pair", "1", compose=ISOLATION)
        first = client.create_job("pair", devices=[device])["id"]
        second = client.create_job("pair", devices=[device])["id"]
        third = client.create_job("pair", devices=[other])["id"]
    for job_id in (first, second, third):
        wait_for(lambda j=job_id: running_everywhere(server, j, "1", 1), 90, what="the jobs")  # type: ignore[misc]
    a, b = inspect_job(first)[device], inspect_job(second)[device]
    c = inspect_job(third)[other]
    a_web, b_web, c_web = _address(a["web"]), _address(b["web"]), _address(c["web"])
    assert len({a_web, b_web, c_web}) == 3
    # Each job reaches its own web by name, and the agent on its gateway...
    assert reaches(a["probe"], "web", 80) and reaches(b["probe"], "web", 80)
    # aardvark-dns reloads its records while the other jobs' containers come
    # up, and can answer NXDOMAIN meanwhile: ask until it answers.
    answers: list[str] = []

    def resolved() -> bool:
        answers.append(sh(a["probe"], "nslookup web")[1])
        return a_web in answers[-1]

    try:
        wait_for(resolved, 30, interval=1, what="web resolved inside the first job")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last answers: {answers[-3:]}") from None
    assert b_web not in answers[-1], answers[-1]
    code, out = sh(
        a["probe"], 'wget -q -O- --post-data \'{"n": 1}\' "$EDGEFLEET_DATA_URL?stream=t"'
    )
    assert code == 0, out
    # ...and never another job's, by address or by container name, on this
    # device or from the other agent's.
    b_name = str(b["web"]["Name"]).lstrip("/")
    _none_reach(
        (a["probe"], b_web, 80),
        (b["probe"], a_web, 80),
        (a["probe"], b_name, 80),
        (c["probe"], a_web, 80),
        (a["probe"], c_web, 80),
    )
    # Each agent keeps its own table, naming its own bridges.
    assert _bridge(a["web"]) in _table(device) and _bridge(b["web"]) in _table(device)
    assert _bridge(c["web"]) in _table(other)
    # Flushed by hand (or by an engine): the agent puts the rules back.
    subprocess.run(["nft", "flush", "table", "inet", f"edgefleet_{device}"], check=True)
    wait_for(lambda: "drop" in _table(device), 15, what="the rules restored")
    _none_reach((a["probe"], b_web, 80), (b["probe"], a_web, 80))
    assert reaches(a["probe"], "web", 80)
    # The engine's own isolation is still asked for, too.
    for net in {next(iter(x["web"]["NetworkSettings"]["Networks"])) for x in (a, b, c)}:
        assert (
            json.loads(podman("network", "inspect", net).stdout)[0]["options"]["isolate"] == "true"
        )
