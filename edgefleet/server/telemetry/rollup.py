"""Downsampling and retention, pure: numbers in, numbers out, no database.

    raw samples (every --telemetry-interval s on the device)
        --fold into their step-second bucket--> Rollup (sum-safe: averages + count)
    kept:  raw     newer than now - raw_retention       (and already folded)
           rollups newer than now - rollup_retention

A rollup keeps averages together with the number of samples they came from,
so samples that arrive late (buffered on a device that was offline for a
day) are folded into the right bucket exactly: the new average is the
count-weighted mean of the old one and the new samples. Counters (network
bytes, uptime) keep their largest value, peaks their maximum.

:func:`downsample` turns points (raw or rollups) into evenly spaced buckets
for ``GET /devices/{id}/metrics?step=``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Point:
    """A sample or a bucket of them: ``count`` samples averaged."""

    time: datetime
    cpu: float
    memory: float
    disk: float
    temperature: float | None = None
    net_rx: int = 0
    net_tx: int = 0
    uptime: float = 0.0
    memory_used: int = 0
    memory_total: int = 0
    disk_used: int = 0
    disk_total: int = 0
    count: int = 1
    cpu_max: float | None = None
    memory_max: float | None = None
    disk_max: float | None = None
    temperature_count: int | None = None

    def peaks(self) -> tuple[float, float, float]:
        return (
            self.cpu if self.cpu_max is None else self.cpu_max,
            self.memory if self.memory_max is None else self.memory_max,
            self.disk if self.disk_max is None else self.disk_max,
        )

    def temps(self) -> int:
        if self.temperature_count is not None:
            return self.temperature_count
        return self.count if self.temperature is not None else 0


def bucket_start(time: datetime, step: int) -> datetime:
    """The start of the ``step``-second bucket holding ``time`` (aligned to the epoch)."""
    seconds = int(time.timestamp())
    return datetime.fromtimestamp(seconds - seconds % step, UTC)


def _mean(a: float, na: int, b: float, nb: int) -> float:
    return (a * na + b * nb) / (na + nb) if na + nb else 0.0


def fold(existing: Point | None, new: Point) -> Point:
    """``existing`` (a bucket, or None) with the samples of ``new`` folded in."""
    if existing is None:
        cpu_max, memory_max, disk_max = new.peaks()
        return replace(
            new,
            cpu_max=cpu_max,
            memory_max=memory_max,
            disk_max=disk_max,
            temperature_count=new.temps(),
        )
    n, m = existing.count, new.count
    tn, tm = existing.temps(), new.temps()
    temperature: float | None = None
    if tn + tm:
        temperature = _mean(existing.temperature or 0.0, tn, new.temperature or 0.0, tm)
    old_peaks, new_peaks = existing.peaks(), new.peaks()
    later = new if new.time >= existing.time else existing
    return Point(
        time=existing.time,
        cpu=_mean(existing.cpu, n, new.cpu, m),
        memory=_mean(existing.memory, n, new.memory, m),
        disk=_mean(existing.disk, n, new.disk, m),
        temperature=temperature,
        net_rx=max(existing.net_rx, new.net_rx),
        net_tx=max(existing.net_tx, new.net_tx),
        uptime=max(existing.uptime, new.uptime),
        memory_used=later.memory_used,
        memory_total=max(existing.memory_total, new.memory_total),
        disk_used=later.disk_used,
        disk_total=max(existing.disk_total, new.disk_total),
        count=n + m,
        cpu_max=max(old_peaks[0], new_peaks[0]),
        memory_max=max(old_peaks[1], new_peaks[1]),
        disk_max=max(old_peaks[2], new_peaks[2]),
        temperature_count=tn + tm,
    )


def rollup(
    points: list[Point], step: int, existing: dict[datetime, Point] | None = None
) -> dict[datetime, Point]:
    """Fold ``points`` into ``step``-second buckets, on top of ``existing`` ones;
    returns every bucket touched (keyed by its start)."""
    buckets = dict(existing or {})
    touched: dict[datetime, Point] = {}
    for point in sorted(points, key=lambda p: p.time):
        start = bucket_start(point.time, step)
        folded = fold(buckets.get(start), replace(point, time=start))
        buckets[start] = touched[start] = folded
    return touched


def downsample(points: list[Point], step: int) -> list[Point]:
    """Evenly spaced buckets of ``step`` seconds, oldest first (empty ones left out)."""
    return sorted(rollup(points, step).values(), key=lambda p: p.time)


@dataclass(frozen=True)
class Cutoffs:
    """What the retention pass deletes: raw samples older than ``raw`` (once
    folded), rollups older than ``rollups``, stored logs not updated since ``logs``."""

    raw: datetime
    rollups: datetime
    logs: datetime


def cutoffs(now: datetime, *, raw_hours: float, rollup_days: float, log_days: float) -> Cutoffs:
    return Cutoffs(
        raw=now - timedelta(hours=raw_hours),
        rollups=now - timedelta(days=rollup_days),
        logs=now - timedelta(days=log_days),
    )
