"""What the agent tells the server about its device: resources, peripherals,
runtimes and the owner's policy. Read from /proc, /sys and /dev; no libraries.

:func:`device_policy` is the one place the owner's flags become a
:class:`~edgefleet.spec.policy.DevicePolicy`: the runtimes enforce that object
and the facts report it, so what the portal shows is what the device does.
"""

from __future__ import annotations

import glob
import os
import platform
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from edgefleet import __version__
from edgefleet.agent.upgrade.state import read_report
from edgefleet.spec.policy import DevicePolicy
from edgefleet.wire.messages import DeviceFacts, Peripheral, Resources

if TYPE_CHECKING:
    from edgefleet.agent.settings import AgentSettings

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "i686": "386"}


def arch() -> str:
    machine = platform.machine().lower()
    return _ARCH.get(machine, machine)


def _memory_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def resources(state_dir: Path) -> Resources:
    usage = shutil.disk_usage(state_dir)
    return Resources(
        cpus=os.cpu_count() or 1,
        memory=_memory_bytes(),
        disk=usage.total,
        disk_free=usage.free,
        arch=arch(),
        os=_os_name(),
        kernel=platform.release(),
        hostname=socket.gethostname(),
    )


def discovered_peripherals(dev: str = "/dev", sys_net: str = "/sys/class/net") -> list[Peripheral]:
    found: list[Peripheral] = []
    for path in sorted(glob.glob(f"{dev}/video*")):
        found.append(Peripheral(kind="camera", name=os.path.basename(path), path=path))
    for pattern in ("ttyUSB*", "ttyACM*"):
        for path in sorted(glob.glob(f"{dev}/{pattern}")):
            found.append(Peripheral(kind="serial", name=os.path.basename(path), path=path))
    for pattern in ("nvidia[0-9]*", "dri/renderD*"):
        for path in sorted(glob.glob(f"{dev}/{pattern}")):
            found.append(Peripheral(kind="gpu", name=os.path.basename(path), path=path))
    for iface in sorted(glob.glob(f"{sys_net}/*")):
        if os.path.exists(f"{iface}/wireless") or os.path.exists(f"{iface}/phy80211"):
            found.append(Peripheral(kind="wifi", name=os.path.basename(iface)))
    return found


def declared_peripherals(specs: list[str]) -> list[Peripheral]:
    """``--peripheral camera`` or ``--peripheral camera=/dev/video0``."""
    result = []
    for spec in specs:
        kind, _, path = spec.partition("=")
        kind = kind.strip()
        if not kind:
            continue
        result.append(
            Peripheral(
                kind=kind,
                name=os.path.basename(path) if path else kind,
                path=path or None,
                details={"declared": "true"},
            )
        )
    return result


def process_allowed(settings: AgentSettings) -> bool:
    """SPEC: the process runtime runs only with ``--runtime process`` or
    ``--allow-process``."""
    return settings.allow_process or settings.runtime == "process"


def default_process_user() -> str:
    """``nobody`` for an agent running as root; otherwise the agent's own user,
    the only one it can run processes as."""
    import pwd

    if os.geteuid() == 0:
        return "nobody"
    return pwd.getpwuid(os.geteuid()).pw_name


def device_policy(
    settings: AgentSettings, discovered: list[Peripheral] | None = None
) -> DevicePolicy:
    """The owner's flags as one policy. Peripherals: a declared one with a path
    (``--peripheral KIND=/dev/PATH``) is the owner's consent for that device; a
    discovered one is handed to jobs only if its kind is in ``--allow-peripheral``."""
    found = discovered_peripherals() if discovered is None else discovered
    declared = declared_peripherals(settings.peripheral)
    kinds = set(settings.allow_peripheral)
    consented = [p for p in found if p.kind in kinds] + declared
    default_memory, max_memory = settings.memory_limits
    default_pids, max_pids = settings.pids_limits
    allowed = process_allowed(settings)
    return DevicePolicy(
        process=allowed,
        process_user=(settings.process_user or default_process_user()) if allowed else None,
        host_paths=list(settings.allow_host_path),
        published_ports=settings.allow_published_ports,
        privileged=settings.allow_privileged,
        capabilities=list(settings.allow_cap),
        security_profiles=list(settings.allow_security_profile),
        external_volumes=list(settings.allow_external_volume),
        peripherals=sorted({p.path for p in consented if p.path}),
        peripheral_kinds=sorted(kinds | {p.kind for p in consented} | {p.name for p in consented}),
        default_memory=default_memory,
        max_memory=max_memory,
        default_pids=default_pids,
        max_pids=max_pids,
    )


def collect(
    state_dir: Path, runtimes: list[str], declared: list[str], policy: DevicePolicy
) -> DeviceFacts:
    return DeviceFacts(
        resources=resources(state_dir),
        runtimes=runtimes,
        peripherals=discovered_peripherals() + declared_peripherals(declared),
        agent_version=__version__,
        policy=policy,
        upgrade=read_report(state_dir),
    )
