"""Translate a normalized service into Engine API create arguments.

One function, one place: ``podman inspect`` (or ``docker inspect``) shows
exactly what the Compose file asked for. The device's policy is checked here
too (:mod:`edgefleet.spec.policy`), because this is the last point before
the engine acts: a refusal names the key and what the device's owner would
have to allow.

Compose key -> Engine API field (``Config`` / ``HostConfig``)::

    image, command, entrypoint     Image, Cmd, Entrypoint
    environment, labels            Env, Labels (+ io.edgefleet.* labels)
    working_dir, user, hostname    WorkingDir, User, Hostname
    stop_signal, stop_grace_period StopSignal, StopTimeout
    ports, expose                  ExposedPorts, PortBindings (published only)
    volumes, tmpfs                 Mounts (volume, bind, tmpfs)
    secrets, configs               Mounts (read-only binds of files on the agent's tmpfs)
    restart                        RestartPolicy
    init, read_only, privileged    Init, ReadonlyRootfs, Privileged
    cap_add, cap_drop, devices     CapAdd, CapDrop, Devices
    mem_limit, cpus, pids_limit    Memory, NanoCpus, PidsLimit (the device's
                                   defaults when unset, never above its maximum)
    shm_size, ulimits, sysctls     ShmSize, Ulimits, Sysctls
    extra_hosts, dns               ExtraHosts, Dns
    security_opt, group_add        SecurityOpt, GroupAdd
    network_mode, pid              NetworkMode, PidMode
    networks (+ aliases)           NetworkingConfig (first), then connect (others)

``healthcheck`` is not given to the engine: the agent runs it (see
:mod:`edgefleet.agent.health`).

What the translation needs besides the service (the device's policy, the
engine's API version) comes in a :class:`CreateSettings`: this module never
reads the runtime, so it can be checked without an engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from docker.types import HostConfig, Mount, Ulimit

from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.runtimes.base import host_path
from edgefleet.agent.runtimes.workload import WorkloadSpec
from edgefleet.spec.policy import DevicePolicy, limits, refusals

GRACE_LABEL = "io.edgefleet.grace"
LOCK_DIR = "/run/edgefleet/lock"

_RESTART: dict[str, dict[str, Any] | None] = {
    "no": None,
    "always": {"Name": "always"},
    "unless-stopped": {"Name": "unless-stopped"},
    "on-failure": {"Name": "on-failure"},
}


@dataclass(frozen=True)
class CreateSettings:
    """What :func:`create_args` needs from the runtime, handed in by it."""

    policy: DevicePolicy  # what the device's owner allows: checked, and limits applied
    api_version: str  # the engine's API version: which HostConfig fields it takes
    host_gateway: str | None = None  # for ``host-gateway`` in extra_hosts (see create_args)


def check_policy(policy: DevicePolicy, spec: WorkloadSpec) -> None:
    """Raise :class:`RuntimeFailure` with every reason the device refuses the
    service. The agent checked the whole job before creating anything; this is
    the last look, right before the engine acts."""
    found = refusals(spec.service_name, spec.service, policy, host_path)
    if found:
        raise RuntimeFailure("; ".join(found))


def _mounts(spec: WorkloadSpec) -> list[Mount]:
    mounts: list[Mount] = []
    for mount in spec.service.volumes:
        if mount.type == "bind":
            assert mount.source is not None
            mounts.append(
                Mount(mount.target, host_path(mount.source), type="bind", read_only=mount.read_only)
            )
        elif mount.type == "tmpfs":
            mounts.append(
                Mount(
                    mount.target,
                    None,
                    type="tmpfs",
                    read_only=mount.read_only,
                    tmpfs_size=mount.tmpfs_size,
                    tmpfs_mode=mount.tmpfs_mode,
                )
            )
        else:  # a named volume (the job's own, or an external one), or anonymous
            source = spec.volumes.get(mount.source, mount.source) if mount.source else None
            mounts.append(Mount(mount.target, source, type="volume", read_only=mount.read_only))
    # Secrets and configs: files the agent wrote on a tmpfs, each mounted read-only.
    for file in spec.files:
        mounts.append(Mount(file.target, str(file.host_path), type="bind", read_only=True))
    # The job's update-lock directory (agent/changes/locks.py): updates.lock there defers upgrades.
    if spec.lock_dir is not None:
        mounts.append(Mount(LOCK_DIR, str(spec.lock_dir), type="bind", read_only=False))
    return mounts


def _ports(policy: DevicePolicy, spec: WorkloadSpec) -> tuple[list[str], dict[int | str, Any]]:
    service = spec.service
    exposed: list[str] = [f"{p}/tcp" for p in service.expose]
    bindings: dict[str, list[Any]] = {}
    for port in service.ports:
        key = f"{port.target}/{port.protocol}"
        exposed.append(key)
        if port.published is not None and policy.published_ports:
            bindings.setdefault(key, []).append((port.host_ip or "", port.published))
    found: dict[int | str, Any] = {k: v[0] if len(v) == 1 else v for k, v in bindings.items()}
    return list(dict.fromkeys(exposed)), found


def network_mode(spec: WorkloadSpec) -> str | None:
    mode = spec.service.network_mode
    if mode in (None, "default"):
        return next(iter(spec.networks)) if spec.networks else None
    return mode


def create_args(settings: CreateSettings, spec: WorkloadSpec) -> dict[str, Any]:
    """Keyword arguments for ``APIClient.create_container`` (the networking config
    is added by the caller). ``settings.host_gateway`` replaces ``host-gateway`` in
    ``extra_hosts`` on engines that do not know it (Podman before 4.7)."""
    check_policy(settings.policy, spec)
    service = spec.service
    memory, pids = limits(service, settings.policy)
    exposed, port_bindings = _ports(settings.policy, spec)
    host_gateway = settings.host_gateway
    restart = _RESTART[service.restart]
    if restart is not None and service.restart == "on-failure" and service.restart_max_attempts:
        restart = {"Name": "on-failure", "MaximumRetryCount": service.restart_max_attempts}
    extra_hosts = [
        h.replace(":host-gateway", f":{host_gateway}") if host_gateway else h
        for h in service.extra_hosts
    ]
    host_config = HostConfig(
        version=settings.api_version,
        restart_policy=restart,
        mounts=_mounts(spec) or None,
        port_bindings=port_bindings or None,
        cap_add=service.cap_add or None,
        cap_drop=service.cap_drop or None,
        devices=service.devices or None,
        read_only=service.read_only or None,
        init=service.init or None,
        shm_size=service.shm_size,
        ulimits=[Ulimit(name=k, soft=v.soft, hard=v.hard) for k, v in service.ulimits.items()]
        or None,
        sysctls=service.sysctls or None,
        mem_limit=memory,
        nano_cpus=int(service.cpus * 1e9) if service.cpus else None,
        pids_limit=pids,
        privileged=service.privileged,
        network_mode=network_mode(spec),
        pid_mode=service.pid,
        extra_hosts=extra_hosts or None,
        dns=service.dns or None,
        security_opt=service.security_opt or None,
        group_add=service.group_add or None,
    )
    labels = dict(spec.labels)
    labels[GRACE_LABEL] = str(math.ceil(service.stop_grace_period))
    return {
        "image": service.image,
        "name": spec.name,
        "command": service.command,
        "entrypoint": service.entrypoint,
        "environment": spec.environment,
        "labels": labels,
        "working_dir": service.working_dir,
        "user": service.user,
        "hostname": service.hostname,
        "stop_signal": service.stop_signal,
        "stop_timeout": math.ceil(service.stop_grace_period),
        "ports": exposed or None,
        "host_config": host_config,
        "detach": True,
    }
