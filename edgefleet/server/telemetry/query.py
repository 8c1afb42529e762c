"""Reading telemetry back: raw samples where they are still kept, rollups
before that, optionally downsampled to ``step`` seconds; and stored logs.

    time -->  [ rollups (step --telemetry-rollup-step) ][ raw samples ... now ]
                                                       ^ the device's oldest raw sample

Pages are time windows: the cursor is the time (µs since the epoch) the next
page starts at, so a page never repeats or skips a point however samples arrive.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.telemetry.rollup import Point, downsample
from edgefleet.server.telemetry.tables import TelemetryRollup, TelemetrySample, WorkloadLog


def micros(time: datetime) -> int:
    return int(time.timestamp() * 1_000_000)


def from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, UTC)


SHARED = (
    "time",
    "cpu",
    "memory",
    "disk",
    "temperature",
    "net_rx",
    "net_tx",
    "uptime",
    "memory_total",
    "disk_total",
)
"""Columns a raw sample and a rollup both have, read into a :class:`Point` alike."""
RAW_ONLY = ("memory_used", "disk_used")
ROLLUP_ONLY = ("count", "cpu_max", "memory_max", "disk_max", "temperature_count")


def _point(row: TelemetrySample | TelemetryRollup, names: tuple[str, ...]) -> Point:
    return Point(**{name: getattr(row, name) for name in names})


def raw_point(row: TelemetrySample) -> Point:
    return _point(row, SHARED + RAW_ONLY)


def rollup_point(row: TelemetryRollup) -> Point:
    """A bucket of samples; its used bytes are not kept, only the averages."""
    return _point(row, SHARED + ROLLUP_ONLY)


async def _points(
    db: AsyncSession, device_pk: int, start: datetime, end: datetime, limit: int | None
) -> list[Point]:
    """Points in [start, end), oldest first, at most ``limit`` (None: all)."""
    raw_floor = await db.scalar(
        select(func.min(TelemetrySample.time)).where(TelemetrySample.device_pk == device_pk)
    )
    points: list[Point] = []
    older = select(TelemetryRollup).where(
        TelemetryRollup.device_pk == device_pk,
        TelemetryRollup.time >= start,
        TelemetryRollup.time < end,
    )
    if raw_floor is not None:
        older = older.where(TelemetryRollup.time < raw_floor)
    older = older.order_by(TelemetryRollup.time)
    if limit is not None:
        older = older.limit(limit)
    points.extend(rollup_point(r) for r in await db.scalars(older))
    if limit is not None and len(points) >= limit:
        return points
    recent = (
        select(TelemetrySample)
        .where(
            TelemetrySample.device_pk == device_pk,
            TelemetrySample.time >= start,
            TelemetrySample.time < end,
        )
        .order_by(TelemetrySample.time)
    )
    if limit is not None:
        recent = recent.limit(limit - len(points))
    points.extend(raw_point(r) for r in await db.scalars(recent))
    return points


async def metrics(
    db: AsyncSession,
    device_pk: int,
    *,
    since: datetime,
    until: datetime,
    step: int | None,
    limit: int,
) -> tuple[list[Point], int | None]:
    """One page of points from ``since`` and the cursor of the next (or None)."""
    if step is None:
        points = await _points(db, device_pk, since, until, limit + 1)
        if len(points) <= limit:
            return points, None
        return points[:limit], micros(points[limit - 1].time) + 1
    window_end = min(until, since + timedelta(seconds=step * limit))
    points = downsample(await _points(db, device_pk, since, window_end, None), step)
    if window_end >= until:
        return points, None
    more = await _points(db, device_pk, window_end, until, 1)
    return points, micros(window_end) if more else None


async def stored_logs(db: AsyncSession, device_pks: list[int], job_id: str) -> list[WorkloadLog]:
    """What devices last shipped of a job's services, by device and service."""
    if not device_pks:
        return []
    rows = await db.scalars(
        select(WorkloadLog)
        .where(WorkloadLog.device_pk.in_(device_pks), WorkloadLog.job_id == job_id)
        .order_by(WorkloadLog.device_pk, WorkloadLog.service)
    )
    return list(rows)


async def latest(db: AsyncSession, device_pks: list[int]) -> dict[int, Point]:
    """Each device's newest raw sample (devices with none are left out)."""
    if not device_pks:
        return {}
    newest = (
        select(TelemetrySample.device_pk, func.max(TelemetrySample.time).label("time"))
        .where(TelemetrySample.device_pk.in_(device_pks))
        .group_by(TelemetrySample.device_pk)
        .subquery()
    )
    rows = await db.scalars(
        select(TelemetrySample).join(
            newest,
            (TelemetrySample.device_pk == newest.c.device_pk)
            & (TelemetrySample.time == newest.c.time),
        )
    )
    return {row.device_pk: raw_point(row) for row in rows}
