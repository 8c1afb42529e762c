"""Compose -> the Engine API's container create body, without an engine: every
key the runtime applies lands in the field ``docker inspect`` shows, and the
device's policy refuses what its owner did not allow."""

from __future__ import annotations

from textwrap import dedent
from typing import Any

import pytest

from edgefleet.agent.changes.executor import job_networks
from edgefleet.agent.changes.plan import EnsureNetwork, plan_job, revision_of
from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.runtimes.base import WorkloadSpec
from edgefleet.agent.runtimes.docker_config import CreateSettings, create_body, network_mode
from edgefleet.spec.compose import parse
from edgefleet.spec.model import AppSpec
from edgefleet.spec.policy import DevicePolicy
from edgefleet.wire.workload import JobAssignment


def assignment(compose: str) -> JobAssignment:
    spec, _ = parse(dedent(compose))
    return JobAssignment(job_id="j1", project_id="p1", application="a", version="1", spec=spec)


def workload(compose: str, service: str, revision: str = "r1") -> WorkloadSpec:
    job = assignment(compose)
    return WorkloadSpec(
        job_id="j1",
        device_id="d1",
        revision=revision,
        version="1",
        service_name=service,
        service=job.spec.services[service],
        environment=dict(job.spec.services[service].environment),
        networks=job_networks(job, "d1", revision, service),
        volumes={
            v: (d.name or v) if d.external else f"ef-j1-d1-{v}" for v, d in job.spec.volumes.items()
        },
    )


def settings(policy: DevicePolicy | None = None) -> CreateSettings:
    """What the docker runtime hands create_body (no engine needed)."""
    return CreateSettings(policy=policy or DevicePolicy())


def args(compose: str, service: str, given: CreateSettings | None = None) -> dict[str, Any]:
    return create_body(given or settings(), workload(compose, service))


HARDENED = """
services:
  app:
    image: localhost/app:1
    command: ["serve", "--port", "8080"]
    entrypoint: /docker-entrypoint.sh
    environment: {MODE: prod}
    user: "1000:1000"
    working_dir: /srv
    hostname: app-host
    read_only: true
    init: true
    tmpfs: ["/run:size=16m,mode=1777", /cache]
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    security_opt: ["no-new-privileges:true"]
    group_add: ["65534"]
    mem_limit: 128m
    cpus: 0.5
    pids_limit: 64
    shm_size: 32m
    ulimits:
      nofile: {soft: 1024, hard: 2048}
      nproc: 512
    sysctls: {net.core.somaxconn: "1024"}
    restart: on-failure:3
    stop_signal: SIGTERM
    stop_grace_period: 1500ms
    labels: {tier: front}
    extra_hosts: ["metrics:10.0.0.9"]
    dns: [9.9.9.9]
    devices: ["/dev/null:/dev/blackhole:rw"]
    expose: ["9000"]
    ports: ["8080", "127.0.0.1:9443:8443/udp"]
    volumes:
      - data:/data
      - /srv/cache
      - {type: volume, source: shared, target: /shared, read_only: true}
volumes:
  data: {}
  shared: {external: true, name: site-wide}
"""


def test_every_key_lands_in_its_engine_field() -> None:
    given = settings(DevicePolicy(published_ports=True, peripherals=["/dev/null"]))
    created = args(HARDENED, "app", given)
    host = created["HostConfig"]
    assert created["Image"] == "localhost/app:1"
    assert created["Cmd"] == ["serve", "--port", "8080"]
    assert created["Entrypoint"] == ["/docker-entrypoint.sh"]
    assert created["Env"] == ["MODE=prod"]
    assert created["User"] == "1000:1000"
    assert created["WorkingDir"] == "/srv"
    assert created["Hostname"] == "app-host"
    assert created["StopSignal"] == "SIGTERM"
    assert created["StopTimeout"] == 2
    assert created["Labels"]["tier"] == "front"
    assert created["Labels"]["io.edgefleet.service"] == "app"
    assert created["Labels"]["io.edgefleet.grace"] == "2"
    assert created["ExposedPorts"] == {"8080/tcp": {}, "8443/udp": {}, "9000/tcp": {}}
    assert (created["Tty"], created["OpenStdin"], created["AttachStdout"]) == (False, False, False)
    assert created["NetworkingConfig"] == {
        "EndpointsConfig": {"ef-j1-d1-r1": {"Aliases": ["app", "app-host"]}}
    }
    assert host["PortBindings"] == {"8443/udp": [{"HostIp": "127.0.0.1", "HostPort": "9443"}]}
    assert host["ReadonlyRootfs"] is True
    assert host["Init"] is True
    assert host["CapDrop"] == ["ALL"] and host["CapAdd"] == ["NET_BIND_SERVICE"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["GroupAdd"] == ["65534"]
    assert host["Memory"] == 128 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 64
    assert host["ShmSize"] == 32 * 1024 * 1024
    assert {u["Name"]: (u["Soft"], u["Hard"]) for u in host["Ulimits"]} == {
        "nofile": (1024, 2048),
        "nproc": (512, 512),
    }
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["ExtraHosts"] == ["metrics:10.0.0.9"]
    assert host["Dns"] == ["9.9.9.9"]
    assert host["Devices"] == [
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/blackhole", "CgroupPermissions": "rw"}
    ]
    mounts = {m["Target"]: m for m in host["Mounts"]}
    assert mounts["/run"]["Type"] == "tmpfs"
    assert mounts["/run"]["TmpfsOptions"] == {"SizeBytes": 16 * 1024 * 1024, "Mode": 0o1777}
    assert mounts["/cache"]["Type"] == "tmpfs"
    assert mounts["/data"] == {
        "Target": "/data",
        "Source": "ef-j1-d1-data",
        "Type": "volume",
        "ReadOnly": False,
    }
    assert mounts["/srv/cache"]["Type"] == "volume" and mounts["/srv/cache"]["Source"] is None
    assert mounts["/shared"]["Source"] == "site-wide" and mounts["/shared"]["ReadOnly"] is True
    assert host["NetworkMode"] == "ef-j1-d1-r1"


def test_networks_and_aliases_follow_compose() -> None:
    compose = """
    services:
      web:
        image: x
        container_name: frontend
        hostname: www
        networks:
          front: {aliases: [site]}
          back: {}
      db:
        image: x
        networks: {back: {aliases: [database, pg]}}
      tool:
        image: x
      host:
        image: x
        network_mode: host
    networks:
      front: {}
      back: {internal: true}
    """
    job = assignment(compose)
    assert job_networks(job, "d1", "r1", "web") == {
        "ef-j1-d1-r1-front": ["web", "frontend", "www", "site"],
        "ef-j1-d1-r1-back": ["web", "frontend", "www"],
    }
    assert job_networks(job, "d1", "r1", "db") == {"ef-j1-d1-r1-back": ["db", "database", "pg"]}
    assert job_networks(job, "d1", "r1", "tool") == {"ef-j1-d1-r1": ["tool"]}
    assert job_networks(job, "d1", "r1", "host") == {}
    assert network_mode(workload(compose, "web")) == "ef-j1-d1-r1-front"
    steps = plan_job("j1", job, [], [], "d1").steps
    nets = {s.name: s.internal for s in steps if isinstance(s, EnsureNetwork)}
    rev = revision_of(job)
    assert nets == {
        f"ef-j1-d1-{rev}": False,
        f"ef-j1-d1-{rev}-front": False,
        f"ef-j1-d1-{rev}-back": True,
    }


@pytest.mark.parametrize(
    ("snippet", "says"),
    [
        ("privileged: true", "privileged is not allowed on this device"),
        ("network_mode: host", "network_mode: host is not allowed"),
        ("pid: host", "pid: host is not allowed"),
        ("cap_add: [SYS_ADMIN]", "cap_add SYS_ADMIN is not allowed"),
        ("security_opt: [seccomp=unconfined]", "security_opt seccomp=unconfined is not allowed"),
        ("volumes: [/etc:/host-etc:ro]", "host path /etc is not allowed"),
        ("ports: ['8080:80']", "publishing port 8080 on the device is not allowed"),
        (
            "devices: [/dev/ttyUSB7]",
            "device /dev/ttyUSB7 is not a peripheral this device's owner allows",
        ),
    ],
)
def test_the_device_policy_refuses_in_plain_words(snippet: str, says: str) -> None:
    compose = f"services:\n  s:\n    image: x\n    {snippet}\n"
    with pytest.raises(RuntimeFailure) as caught:
        args(compose, "s")
    assert says in caught.value.message
    assert caught.value.message.startswith("service s: ")
    job = assignment(compose)
    from edgefleet.server.jobs.eligibility import why_not
    from edgefleet.wire.messages import DeviceFacts

    facts = DeviceFacts(
        runtimes=["docker"],
        policy={"host_paths": [], "published_ports": False, "privileged": False},
    )
    reason = why_not(job.spec, facts)
    assert reason is not None and says in reason


def test_what_the_owner_allows_runs(tmp_path: Any) -> None:
    allowed = tmp_path / "shared"
    allowed.mkdir()
    compose = f"""
    services:
      s:
        image: x
        privileged: true
        cap_add: [SYS_ADMIN]
        ports: ["8080:80"]
        volumes: ["{allowed}/sub:/data"]
        devices: [/dev/ttyUSB7]
    """
    given = settings(DevicePolicy(host_paths=[str(allowed)], published_ports=True, privileged=True))
    host = args(compose, "s", given)["HostConfig"]
    assert host["Privileged"] is True
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert host["Mounts"][0]["Source"] == f"{allowed}/sub"
    # A path that only looks inside the allowed one is refused (symlinks resolved).
    (allowed / "escape").symlink_to("/etc")
    sneaky = compose.replace(f"{allowed}/sub", f"{allowed}/escape")
    with pytest.raises(RuntimeFailure, match=r"^service s: host path \S+/escape is not allowed"):
        args(sneaky, "s", given)
    # Peripherals the device reports may be passed through without --allow-privileged.
    camera = "services:\n  s:\n    image: x\n    devices: [/dev/video0]\n"
    assert args(camera, "s", settings(DevicePolicy(peripherals=["/dev/video0"])))["HostConfig"][
        "Devices"
    ] == [
        {"PathOnHost": "/dev/video0", "PathInContainer": "/dev/video0", "CgroupPermissions": "rwm"}
    ]


def test_revision_ignores_fields_left_at_their_default() -> None:
    job = assignment("services:\n  s:\n    image: x\n")
    bare = JobAssignment(
        job_id="j1",
        project_id="p1",
        application="a",
        version="1",
        spec=AppSpec.model_validate({"services": {"s": {"image": "x"}}}),
    )
    assert revision_of(job) == revision_of(bare)
    rotated = job.model_copy(update={"registry_auth": {"ghcr.io": {"username": "u"}}})
    assert revision_of(rotated) == revision_of(job)
    assert revision_of(assignment("services:\n  s:\n    image: x\n    pids_limit: 5\n")) != (
        revision_of(job)
    )


def test_a_bare_service_sends_only_what_is_set_and_the_devices_limits() -> None:
    """Unset keys stay out of the body (the engine's defaults apply), while the
    device's default limits are always sent: a service cannot leave them out."""
    policy = DevicePolicy(default_memory=64 * 1024 * 1024, default_pids=100)
    created = args("services:\n  s:\n    image: x\n", "s", settings(policy))
    assert created["HostConfig"] == {
        "NetworkMode": "ef-j1-d1-r1",
        "Memory": 64 * 1024 * 1024,
        "PidsLimit": 100,
    }
    assert "Cmd" not in created and "Env" not in created and "User" not in created
    assert created["Labels"]["io.edgefleet.grace"] == "10"
