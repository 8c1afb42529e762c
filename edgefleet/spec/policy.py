"""What a device's owner allows a workload to do, and which services ask for more.

One check, used on both sides with the same words: the server runs it on
the policy a device reports in its facts (so a device that may not run a job
shows ``cannot run here: ...`` at once), and the agent runs it again right
before the engine acts (the last word is the device's, and it resolves
symlinks the server cannot see).

What needs the owner's permission, and the agent flag that grants it:

=====================================  ==========================================
host bind mounts                       ``--allow-host-path PREFIX`` (repeat)
published ports                        ``--allow-published-ports``
privileged, host network, host pid,    ``--allow-privileged``
capabilities that own the device,
security options that turn isolation
off
host devices                           a peripheral the device reports (found, or
                                       ``--peripheral KIND=/dev/PATH``), or
                                       ``--allow-host-path``
=====================================  ==========================================
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from edgefleet.spec.model import Service

POWERFUL_CAPABILITIES = frozenset(
    {
        "ALL",
        "SYS_ADMIN",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_BOOT",
        "SYS_TIME",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "BPF",
        "PERFMON",
    }
)
"""Capabilities that reach past the container to the device itself."""

_UNCONFINED = (
    "seccomp=unconfined",
    "apparmor=unconfined",
    "label=disable",
    "systempaths=unconfined",
)
_PRIVILEGED = "its agent needs --allow-privileged"

Resolve = Callable[[str], "str | None"]


class DevicePolicy(BaseModel):
    """The owner's permissions, as the agent reports them in ``facts.policy``."""

    model_config = ConfigDict(extra="ignore")

    host_paths: list[str] = Field(default_factory=list)
    published_ports: bool = False
    privileged: bool = False
    peripherals: list[str] = Field(
        default_factory=list, description="device paths of the peripherals it reports"
    )


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


def refusals(
    name: str, service: Service, policy: DevicePolicy, resolve: Resolve = _normalize
) -> list[str]:
    """Every reason this device refuses ``service``, in plain words; empty if it may run."""
    if service.runtime != "container":
        return []
    found: list[str] = []
    if not policy.privileged:
        wants = []
        if service.privileged:
            wants.append("privileged")
        if service.network_mode == "host":
            wants.append("network_mode: host")
        if service.pid == "host":
            wants.append("pid: host")
        caps = sorted(
            {c.upper().removeprefix("CAP_") for c in service.cap_add} & POWERFUL_CAPABILITIES
        )
        wants += [f"cap_add {cap}" for cap in caps]
        wants += [
            f"security_opt {opt}"
            for opt in service.security_opt
            if opt.replace(":", "=", 1).startswith(_UNCONFINED)
        ]
        found += [
            f"service {name}: {what} is not allowed on this device ({_PRIVILEGED})"
            for what in wants
        ]
    for mount in service.volumes:
        if (
            mount.type == "bind"
            and mount.source
            and not path_allowed(mount.source, policy.host_paths, resolve)
        ):
            found.append(
                f"service {name}: host path {mount.source} is not allowed on this device "
                f"(its agent needs --allow-host-path {mount.source} or a parent of it)"
            )
    for opt in service.security_opt:
        key, _, value = opt.replace(":", "=", 1).partition("=")
        profile = key == "seccomp" and value.startswith("/")
        if profile and not path_allowed(value, policy.host_paths, resolve):
            found.append(
                f"service {name}: seccomp profile {value} is not allowed on this device "
                f"(its agent needs --allow-host-path {value})"
            )
    for device in service.devices:
        host = device.split(":", 1)[0]
        if policy.privileged or path_allowed(host, policy.host_paths, resolve):
            continue
        if not any(resolve(host) == resolve(p) for p in policy.peripherals if p):
            found.append(
                f"service {name}: device {host} is not a peripheral of this device (declare it "
                f"with the agent's --peripheral KIND={host}, or allow it with --allow-host-path {host})"
            )
    if not policy.published_ports:
        published = sorted({p.published for p in service.ports if p.published is not None})
        if published:
            ports = ", ".join(str(p) for p in published)
            found.append(
                f"service {name}: publishing port {ports} on the device is not allowed (its agent "
                "needs --allow-published-ports); without 'published' the port is still reachable "
                "through the proxy"
            )
    return found
