"""What a device's owner allows a workload to do, and which services ask for more.

Deny by default: a workload gets what a container gets from the engine by
default (its own network, the engine's default capabilities, default memory
and process limits), and everything past that needs the device owner's
permission, given as agent flags and reported in the device's facts.

One check, used on both sides with the same words: the server runs
:func:`app_refusals` on the policy a device reports (so a device that may not
run a job shows ``cannot run here: ...`` at once), and the agent runs it again
before it creates anything for the job (the last word is the device's, and it
resolves symlinks the server cannot see).

What needs the owner's permission, and the agent flag that grants it:

=====================================  ==========================================
the process runtime                    ``--allow-process`` or ``--runtime process``
host bind mounts                       ``--allow-host-path PREFIX`` (repeat)
published ports                        ``--allow-published-ports``
capabilities outside the engine's      ``--allow-cap CAP`` (repeat), or
default set                            ``--allow-privileged``
seccomp / AppArmor profiles            ``--allow-security-profile PATH_OR_NAME``
                                       (or a host path allowed for mounts)
external volumes                       ``--allow-external-volume NAME_OR_GLOB``;
                                       never a name starting ``ef-`` (jobs' own)
peripherals (host devices)             ``--allow-peripheral KIND`` (repeat), or
                                       ``--peripheral KIND=/dev/PATH``
privileged, host or bridge network,    ``--allow-privileged``
host pid, ``cap_add: ALL``, any other
``security_opt``
more memory / processes than the       ``--max-memory``, ``--max-pids``
device's maximum, or none at all
=====================================  ==========================================
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from edgefleet.spec.model import AppSpec, Service

DEFAULT_CAPABILITIES = frozenset(
    {
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SYS_CHROOT",
        "MKNOD",
        "AUDIT_WRITE",
        "SETFCAP",
    }
)
"""Docker's default set: asking for one of these (Podman's default set is
smaller) gives a container nothing a Docker container does not have anyway.
No "harmless" additions: NET_ADMIN rewrites the job's network and firewall,
SYS_NICE can starve the device with real-time priorities, IPC_LOCK pins
memory, SYS_PTRACE reads other processes: each is the owner's call."""

OWNER_ONLY_CAPABILITIES = frozenset({"ALL"})
"""Granted only with ``--allow-privileged``, never one by one."""

JOB_VOLUME_PREFIX = "ef-"
"""Engine objects of jobs are named ``ef-<job>-<device>-...``: an external volume
with such a name would be another job's data."""

PROJECT_VOLUME = re.compile(r"ef-proj-[a-z0-9]+-[A-Za-z0-9][A-Za-z0-9_.-]*")
"""A project volume as the server names it (``ef-proj-<project id>-<name>``): the
agent's own, kept across jobs; no Compose file can give this name itself."""

_FREE_SECURITY_OPTS = ("no-new-privileges", "no-new-privileges=true", "no-new-privileges=false")
_PRIVILEGED = "its agent needs --allow-privileged"
_UNLIMITED_PIDS = "pids_limit -1 (no limit)"

Resolve = Callable[[str], "str | None"]


class DevicePolicy(BaseModel):
    """The owner's permissions, as the agent reports them in ``facts.policy``.

    Every field defaults to "not allowed" (or to no limit for the limit
    fields, which is what an agent that predates them applies), so an older
    agent's smaller dict parses and is judged as strictly as it reports."""

    model_config = ConfigDict(extra="ignore")

    process: bool = Field(False, description="the process runtime may run services")
    process_user: str | None = Field(None, description="the user process services run as")
    host_paths: list[str] = Field(default_factory=list)
    published_ports: bool = False
    privileged: bool = False
    capabilities: list[str] = Field(
        default_factory=list, description="capabilities allowed beyond the engine's defaults"
    )
    security_profiles: list[str] = Field(
        default_factory=list,
        description="seccomp profile path prefixes and AppArmor profile names allowed",
    )
    external_volumes: list[str] = Field(
        default_factory=list, description="names (or globs) of engine volumes jobs may mount"
    )
    peripherals: list[str] = Field(
        default_factory=list, description="device paths of the peripherals jobs may use"
    )
    peripheral_kinds: list[str] = Field(
        default_factory=list, description="kinds (and names) of peripherals jobs may require"
    )
    default_memory: int | None = Field(None, description="bytes, for a service that sets none")
    max_memory: int | None = Field(None, description="bytes; none: no maximum")
    default_pids: int | None = Field(None, description="for a service that sets none")
    max_pids: int | None = Field(None, description="none: no maximum")


def _normalize(path: str) -> str | None:
    """The server's view of a path: absolute ones only (a relative path is resolved
    by the agent, against its own working directory)."""
    return posixpath.normpath(path) if path.startswith("/") else None


def path_allowed(path: str, allowed: list[str], resolve: Resolve = _normalize) -> bool:
    real = resolve(path)
    if real is None:
        return True  # only the agent can tell; it checks again
    for prefix in allowed:
        base = resolve(prefix)
        if base is None:
            continue
        if real == base or real.startswith(base.rstrip("/") + "/"):
            return True
    return False


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:g} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return str(n)


def limits(service: Service, policy: DevicePolicy) -> tuple[int | None, int | None]:
    """The memory (bytes) and process limits a service runs with on this device:
    its own, else the device's defaults, never above the device's maximum.
    ``None`` is no limit; a ``pids_limit`` of 0 in the spec asks for none."""
    memory = service.mem_limit if service.mem_limit is not None else policy.default_memory
    if memory is not None and policy.max_memory is not None:
        memory = min(memory, policy.max_memory)
    if memory is None and policy.max_memory is not None:
        memory = policy.max_memory
    pids = service.pids_limit if service.pids_limit is not None else policy.default_pids
    if pids == 0:
        pids = None
    if pids is not None and policy.max_pids is not None:
        pids = min(pids, policy.max_pids)
    if pids is None and policy.max_pids is not None:
        pids = policy.max_pids
    return memory, pids


def _limit_refusals(service: Service, policy: DevicePolicy) -> list[str]:
    found = []
    if (
        service.mem_limit is not None
        and policy.max_memory is not None
        and service.mem_limit > policy.max_memory
    ):
        found.append(
            f"mem_limit {_size(service.mem_limit)} is more than this device allows "
            f"({_size(policy.max_memory)}; its agent's --max-memory)"
        )
    if service.pids_limit is not None and policy.max_pids is not None:
        if service.pids_limit == 0:
            found.append(
                f"{_UNLIMITED_PIDS} is not allowed on this device (at most {policy.max_pids}; "
                "its agent needs --max-pids none)"
            )
        elif service.pids_limit > policy.max_pids:
            found.append(
                f"pids_limit {service.pids_limit} is more than this device allows "
                f"({policy.max_pids}; its agent's --max-pids)"
            )
    return found


def _capability_refusals(service: Service, policy: DevicePolicy) -> list[str]:
    if policy.privileged:
        return []
    allowed = DEFAULT_CAPABILITIES | {c.upper().removeprefix("CAP_") for c in policy.capabilities}
    found = []
    for cap in sorted({c.upper().removeprefix("CAP_") for c in service.cap_add}):
        if cap in OWNER_ONLY_CAPABILITIES:
            found.append(f"cap_add {cap} is not allowed on this device ({_PRIVILEGED})")
        elif cap not in allowed:
            found.append(
                f"cap_add {cap} is not allowed on this device "
                f"(its agent needs --allow-cap {cap} or --allow-privileged)"
            )
    return found


def _security_opt_refusals(service: Service, policy: DevicePolicy, resolve: Resolve) -> list[str]:
    found = []
    for opt in service.security_opt:
        key, _, value = opt.replace(":", "=", 1).partition("=")
        normal = f"{key}={value}" if value else key
        if normal in _FREE_SECURITY_OPTS or policy.privileged:
            continue
        shown = opt if len(opt) <= 60 else opt[:57] + "..."
        if key == "seccomp" and value.startswith("/"):
            prefixes = policy.security_profiles + policy.host_paths
            if path_allowed(value, prefixes, resolve):
                continue
            found.append(
                f"seccomp profile {value} is not allowed on this device "
                f"(its agent needs --allow-security-profile {value} or a parent of it)"
            )
        elif key == "apparmor" and value and value != "unconfined":
            if value in policy.security_profiles:
                continue
            found.append(
                f"apparmor profile {value} is not allowed on this device "
                f"(its agent needs --allow-security-profile {value})"
            )
        else:
            # unconfined profiles, inline seccomp bodies, SELinux labels
            # (type:spc_t, disable), systempaths=unconfined, anything unknown.
            found.append(f"security_opt {shown} is not allowed on this device ({_PRIVILEGED})")
    return found


def _container_refusals(service: Service, policy: DevicePolicy, resolve: Resolve) -> list[str]:
    found: list[str] = []
    if not policy.privileged:
        if service.privileged:
            found.append(f"privileged is not allowed on this device ({_PRIVILEGED})")
        if service.network_mode in ("host", "bridge"):
            found.append(
                f"network_mode: {service.network_mode} is not allowed on this device "
                f"({_PRIVILEGED}); without it the service is on its job's own network"
            )
        if service.pid == "host":
            found.append(f"pid: host is not allowed on this device ({_PRIVILEGED})")
    found += _capability_refusals(service, policy)
    found += _security_opt_refusals(service, policy, resolve)
    for mount in service.volumes:
        if (
            mount.type == "bind"
            and mount.source
            and not path_allowed(mount.source, policy.host_paths, resolve)
        ):
            found.append(
                f"host path {mount.source} is not allowed on this device "
                f"(its agent needs --allow-host-path {mount.source} or a parent of it)"
            )
    for device in service.devices:
        host = device.split(":", 1)[0]
        if policy.privileged or path_allowed(host, policy.host_paths, resolve):
            continue
        if not any(resolve(host) == resolve(p) for p in policy.peripherals if p):
            found.append(
                f"device {host} is not a peripheral this device's owner allows (its agent needs "
                f"--allow-peripheral KIND, or --peripheral KIND={host}, or --allow-host-path {host})"
            )
    if not policy.published_ports:
        published = sorted({p.published for p in service.ports if p.published is not None})
        if published:
            ports = ", ".join(str(p) for p in published)
            found.append(
                f"publishing port {ports} on the device is not allowed (its agent needs "
                "--allow-published-ports); without 'published' the port is still reachable "
                "through the proxy"
            )
    return found + _limit_refusals(service, policy)


def refusals(
    name: str, service: Service, policy: DevicePolicy, resolve: Resolve = _normalize
) -> list[str]:
    """Every reason this device refuses ``service``, in plain words; empty if it may run."""
    if service.runtime == "process":
        found = []
        if not policy.process:
            found.append(
                "the process runtime is not allowed on this device "
                "(its agent needs --allow-process or --runtime process)"
            )
        if service.working_dir:
            found.append(
                "working_dir is chosen by the agent for a process service (outside its state "
                "dir); remove it"
            )
    else:
        found = _container_refusals(service, policy, resolve)
    return [f"service {name}: {reason}" for reason in found]


def external_volume_allowed(name: str, policy: DevicePolicy) -> bool:
    if name.startswith(JOB_VOLUME_PREFIX):
        return False
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in policy.external_volumes)


def app_refusals(spec: AppSpec, policy: DevicePolicy, resolve: Resolve = _normalize) -> list[str]:
    """Every reason this device refuses the application: each service's, the
    external volumes its containers mount, the peripherals it requires."""
    found = [
        r
        for name in sorted(spec.services)
        for r in refusals(name, spec.services[name], policy, resolve)
    ]
    mounted = {
        m.source
        for s in spec.services.values()
        if s.runtime == "container"
        for m in s.volumes
        if m.type == "volume" and m.source
    }
    for key in sorted(mounted):
        volume = spec.volumes.get(key)
        if volume is None or not volume.external:
            continue
        real = volume.name or key
        if volume.project and PROJECT_VOLUME.fullmatch(real):
            continue  # the server named it after the job's own project (server/volumes/)
        if real.startswith(JOB_VOLUME_PREFIX):
            found.append(
                f"volume {key}: external volume {real} is named like a job's own volume "
                f"({JOB_VOLUME_PREFIX}...), which no job may mount"
            )
        elif not external_volume_allowed(real, policy):
            found.append(
                f"volume {key}: external volume {real} is not allowed on this device "
                f"(its agent needs --allow-external-volume {real})"
            )
    for wanted in spec.requires.peripherals:
        if wanted not in policy.peripheral_kinds:
            found.append(
                f"requires peripheral {wanted}, which this device's owner has not allowed jobs "
                f"to use (its agent needs --allow-peripheral {wanted})"
            )
    return found
