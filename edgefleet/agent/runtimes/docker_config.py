"""Translate a normalized service into the Engine API's container create body.

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

The body is the engine's own JSON (``POST /containers/create``), built here
field by field as the docker SDK used to build it: a field left unset is left
out, so the engine applies its defaults.

``healthcheck`` is not given to the engine: the agent runs it (see
:mod:`edgefleet.agent.health`).

What the translation needs besides the service (the device's policy, the
host gateway's address) comes in a :class:`CreateSettings`: this module never
reads the runtime, so it can be checked without an engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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
    host_gateway: str | None = None  # for ``host-gateway`` in extra_hosts (see create_args)


def check_policy(policy: DevicePolicy, spec: WorkloadSpec) -> None:
    """Raise :class:`RuntimeFailure` with every reason the device refuses the
    service. The agent checked the whole job before creating anything; this is
    the last look, right before the engine acts."""
    found = refusals(spec.service_name, spec.service, policy, host_path)
    if found:
        raise RuntimeFailure("; ".join(found))


def _mount(target: str, source: str | None, kind: str, read_only: bool) -> dict[str, Any]:
    return {"Target": target, "Source": source, "Type": kind, "ReadOnly": read_only}


def _mounts(spec: WorkloadSpec) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = []
    for mount in spec.service.volumes:
        if mount.type == "bind":
            assert mount.source is not None
            mounts.append(_mount(mount.target, host_path(mount.source), "bind", mount.read_only))
        elif mount.type == "tmpfs":
            found = _mount(mount.target, None, "tmpfs", mount.read_only)
            options: dict[str, int] = {}
            if mount.tmpfs_mode:
                options["Mode"] = mount.tmpfs_mode
            if mount.tmpfs_size:
                options["SizeBytes"] = mount.tmpfs_size
            if options:
                found["TmpfsOptions"] = options
            mounts.append(found)
        else:  # a named volume (the job's own, or an external one), or anonymous
            source = spec.volumes.get(mount.source, mount.source) if mount.source else None
            mounts.append(_mount(mount.target, source, "volume", mount.read_only))
    # Secrets and configs: files the agent wrote on a tmpfs, each mounted read-only.
    for file in spec.files:
        mounts.append(_mount(file.target, str(file.host_path), "bind", True))
    # The job's update-lock directory (agent/changes/locks.py): updates.lock there defers upgrades.
    if spec.lock_dir is not None:
        mounts.append(_mount(LOCK_DIR, str(spec.lock_dir), "bind", False))
    return mounts


def _ports(policy: DevicePolicy, spec: WorkloadSpec) -> tuple[list[str], dict[str, Any]]:
    """Exposed ports (``8080/tcp``) and the published ones' bindings."""
    service = spec.service
    exposed: list[str] = [f"{p}/tcp" for p in service.expose]
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in service.ports:
        key = f"{port.target}/{port.protocol}"
        exposed.append(key)
        if port.published is not None and policy.published_ports:
            binding = {"HostIp": port.host_ip or "", "HostPort": str(port.published)}
            bindings.setdefault(key, []).append(binding)
    return list(dict.fromkeys(exposed)), dict(bindings)


def _devices(devices: list[str]) -> list[dict[str, str]]:
    """``host[:container[:permissions]]`` as the engine takes a device."""
    found = []
    for device in devices:
        parts = device.split(":")
        found.append(
            {
                "PathOnHost": parts[0],
                "PathInContainer": parts[1] if len(parts) > 1 else parts[0],
                "CgroupPermissions": parts[2] if len(parts) > 2 else "rwm",
            }
        )
    return found


def network_mode(spec: WorkloadSpec) -> str | None:
    mode = spec.service.network_mode
    if mode in (None, "default"):
        return next(iter(spec.networks)) if spec.networks else None
    return mode


def _set(target: dict[str, Any], **fields: Any) -> None:
    """Set the fields that have a value (a field left unset takes the engine's default)."""
    target.update({k: v for k, v in fields.items() if v is not None and v != [] and v != {}})


def _host_config(settings: CreateSettings, spec: WorkloadSpec) -> dict[str, Any]:
    service = spec.service
    memory, pids = limits(service, settings.policy)
    _exposed, port_bindings = _ports(settings.policy, spec)
    host_gateway = settings.host_gateway
    restart = _RESTART[service.restart]
    if restart is not None and service.restart == "on-failure" and service.restart_max_attempts:
        restart = {"Name": "on-failure", "MaximumRetryCount": service.restart_max_attempts}
    extra_hosts = [
        h.replace(":host-gateway", f":{host_gateway}") if host_gateway else h
        for h in service.extra_hosts
    ]
    host: dict[str, Any] = {"NetworkMode": network_mode(spec) or "default"}
    _set(
        host,
        RestartPolicy=restart,
        Mounts=_mounts(spec),
        PortBindings=port_bindings,
        CapAdd=service.cap_add,
        CapDrop=service.cap_drop,
        Devices=_devices(service.devices),
        ReadonlyRootfs=service.read_only or None,
        Init=service.init or None,
        ShmSize=service.shm_size,
        Ulimits=[{"Name": k, "Soft": v.soft, "Hard": v.hard} for k, v in service.ulimits.items()],
        Sysctls={k: str(v) for k, v in service.sysctls.items()},
        Memory=memory,
        NanoCpus=int(service.cpus * 1e9) if service.cpus else None,
        PidsLimit=pids or None,
        Privileged=service.privileged or None,
        PidMode=service.pid or None,
        ExtraHosts=extra_hosts,
        Dns=service.dns,
        SecurityOpt=service.security_opt,
        GroupAdd=[str(g) for g in service.group_add],
    )
    return host


def create_body(settings: CreateSettings, spec: WorkloadSpec) -> dict[str, Any]:
    """The body of ``POST /containers/create`` for the service, joined to its first
    network (the caller connects the others). ``settings.host_gateway`` replaces
    ``host-gateway`` in ``extra_hosts`` on engines that do not know it (Podman
    before 4.7)."""
    check_policy(settings.policy, spec)
    service = spec.service
    exposed, _bindings = _ports(settings.policy, spec)
    labels = dict(spec.labels)
    labels[GRACE_LABEL] = str(math.ceil(service.stop_grace_period))
    body: dict[str, Any] = {
        "Image": service.image,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Labels": labels,
        "StopTimeout": math.ceil(service.stop_grace_period),
        "HostConfig": _host_config(settings, spec),
    }
    _set(
        body,
        Cmd=service.command,
        Entrypoint=service.entrypoint,
        Env=[f"{k}={v}" for k, v in spec.environment.items()],
        WorkingDir=service.working_dir,
        User=service.user,
        Hostname=service.hostname,
        StopSignal=service.stop_signal,
        ExposedPorts={port: {} for port in exposed},
    )
    networks = list(spec.networks.items())
    if networks:
        first, aliases = networks[0]
        endpoint = {"Aliases": aliases} if aliases else {}
        body["NetworkingConfig"] = {"EndpointsConfig": {first: endpoint}}
    return body
