"""What the agent tells the server about its device: resources, peripherals,
runtimes and the owner's policy. Read from /proc, /sys and /dev; no libraries."""

from __future__ import annotations

import glob
import os
import platform
import shutil
import socket
from pathlib import Path

from edgefleet import __version__
from edgefleet.wire.messages import DeviceFacts, Peripheral, Resources

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


def collect(
    state_dir: Path, runtimes: list[str], declared: list[str], policy: dict[str, object]
) -> DeviceFacts:
    return DeviceFacts(
        resources=resources(state_dir),
        runtimes=runtimes,
        peripherals=discovered_peripherals() + declared_peripherals(declared),
        agent_version=__version__,
        policy=dict(policy),
    )
