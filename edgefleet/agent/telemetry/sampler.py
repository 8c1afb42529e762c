"""Reading the device's health from Linux's own files (no psutil: the slim agent
stays slim, and these files exist on every Linux board, Raspberry Pi included).

CPU is a rate, so a :class:`Sampler` keeps the previous ``/proc/stat`` totals;
the first sample after start reports the average since boot. Temperature is the
hottest ``/sys/class/thermal/thermal_zone*/temp`` (millidegrees), or none when
the board exposes no zone. Every reader takes its root as an argument so tests
can hand it a fake ``/proc``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from edgefleet.wire.telemetry import Sample


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def cpu_times(proc: Path) -> tuple[int, int]:
    """(busy, total) jiffies from the aggregate ``cpu`` line of /proc/stat."""
    for line in _read(proc / "stat").splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            total = sum(values[:8])  # guest time is already counted in user/nice
            return total - idle, total
    return 0, 0


def memory(proc: Path) -> tuple[int, int]:
    """(used, total) bytes; used = total - MemAvailable, what `free` calls used+shared."""
    fields: dict[str, int] = {}
    for line in _read(proc / "meminfo").splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            fields[name] = int(parts[0]) * 1024
    total = fields.get("MemTotal", 0)
    available = fields.get("MemAvailable", fields.get("MemFree", 0))
    return max(total - available, 0), total


def disk(path: Path) -> tuple[int, int]:
    """(used, total) bytes of the filesystem holding ``path``, as `df` counts them."""
    try:
        st = os.statvfs(path)
    except OSError:
        return 0, 0
    total = st.f_blocks * st.f_frsize
    return total - st.f_bfree * st.f_frsize, total


def temperature(thermal: Path) -> float | None:
    """The hottest thermal zone in °C, or None."""
    hottest: float | None = None
    for zone in sorted(thermal.glob("thermal_zone*")):
        raw = _read(zone / "temp").strip()
        try:
            celsius = int(raw) / 1000.0
        except ValueError:
            continue
        if -100 <= celsius <= 250 and (hottest is None or celsius > hottest):
            hottest = celsius
    return hottest


def network(proc: Path) -> tuple[int, int]:
    """(received, sent) bytes over every interface but loopback."""
    rx = tx = 0
    for line in _read(proc / "net" / "dev").splitlines()[2:]:
        name, _, rest = line.partition(":")
        values = rest.split()
        if name.strip() == "lo" or len(values) < 9:
            continue
        rx += int(values[0])
        tx += int(values[8])
    return rx, tx


def uptime(proc: Path) -> float:
    raw = _read(proc / "uptime").split()
    return float(raw[0]) if raw else 0.0


def _percent(part: int, whole: int) -> float:
    return round(min(max(100.0 * part / whole, 0.0), 100.0), 2) if whole > 0 else 0.0


class Sampler:
    """Takes one :class:`Sample` at a time; keeps the CPU totals between them."""

    def __init__(
        self,
        disk_path: Path,
        *,
        proc: Path = Path("/proc"),
        thermal: Path = Path("/sys/class/thermal"),
    ) -> None:
        self.disk_path = disk_path
        self.proc = proc
        self.thermal = thermal
        self._cpu: tuple[int, int] = (0, 0)

    def sample(self, seq: int, now: float | None = None) -> Sample:
        busy, total = cpu_times(self.proc)
        last_busy, last_total = self._cpu
        self._cpu = (busy, total)
        mem_used, mem_total = memory(self.proc)
        disk_used, disk_total = disk(self.disk_path)
        rx, tx = network(self.proc)
        return Sample(
            seq=seq,
            time=now if now is not None else time.time(),
            cpu=_percent(busy - last_busy, total - last_total),
            memory=_percent(mem_used, mem_total),
            disk=_percent(disk_used, disk_total),
            memory_used=mem_used,
            memory_total=mem_total,
            disk_used=disk_used,
            disk_total=disk_total,
            temperature=temperature(self.thermal),
            net_rx=rx,
            net_tx=tx,
            uptime=uptime(self.proc),
        )
