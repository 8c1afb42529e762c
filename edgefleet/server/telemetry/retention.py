"""The rollup and retention pass, on one replica at a time (a lease, like the
scheduler's clock: :mod:`edgefleet.server.scheduler.lease`).

    every --telemetry-pass-interval s, if this replica holds "telemetry":
        raw samples not folded yet --rollup.rollup--> upsert their buckets, mark folded
        delete folded raw samples older than --telemetry-raw-hours
        delete rollups older than --telemetry-rollup-days
        delete stored logs not updated for --stored-log-days

Folding is incremental (``rolled``), so samples that reach the server a day
late, from a device that was offline, still land in the right bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import utcnow
from edgefleet.server.db.upsert import insert_for
from edgefleet.server.scheduler import lease
from edgefleet.server.telemetry import query, rollup
from edgefleet.server.telemetry.tables import TelemetryRollup, TelemetrySample, WorkloadLog

log = logging.getLogger(__name__)

LEASE = "telemetry"
FOLD_BATCH = 5000  # raw samples folded per transaction


async def fold(db: AsyncSession, step: int) -> int:
    """Fold up to FOLD_BATCH unfolded samples into their rollups; commit.
    Returns how many were folded (call again while it returns FOLD_BATCH)."""
    rows = list(
        await db.scalars(
            select(TelemetrySample)
            .where(TelemetrySample.rolled.is_(False))
            .order_by(TelemetrySample.pk)
            .limit(FOLD_BATCH)
        )
    )
    if not rows:
        return 0
    by_device: dict[int, list[TelemetrySample]] = {}
    for row in rows:
        by_device.setdefault(row.device_pk, []).append(row)
    for device_pk, samples in by_device.items():
        starts = {rollup.bucket_start(s.time, step) for s in samples}
        existing = {
            r.time: query.rollup_point(r)
            for r in await db.scalars(
                select(TelemetryRollup).where(
                    TelemetryRollup.device_pk == device_pk,
                    TelemetryRollup.step == step,
                    TelemetryRollup.time.in_(starts),
                )
            )
        }
        points = [query.raw_point(s) for s in samples]
        for start, point in rollup.rollup(points, step, existing).items():
            await _upsert(db, device_pk, step, start, point)
    await db.execute(
        update(TelemetrySample)
        .where(TelemetrySample.pk.in_([r.pk for r in rows]))
        .values(rolled=True)
    )
    await db.commit()
    return len(rows)


async def _upsert(
    db: AsyncSession, device_pk: int, step: int, start: datetime, point: rollup.Point
) -> None:
    cpu_max, memory_max, disk_max = point.peaks()
    values = {
        "count": point.count,
        "cpu": point.cpu,
        "memory": point.memory,
        "disk": point.disk,
        "cpu_max": cpu_max,
        "memory_max": memory_max,
        "disk_max": disk_max,
        "temperature": point.temperature,
        "temperature_count": point.temps(),
        "memory_total": point.memory_total,
        "disk_total": point.disk_total,
        "net_rx": point.net_rx,
        "net_tx": point.net_tx,
        "uptime": point.uptime,
    }
    stmt = insert_for(db, TelemetryRollup).values(
        device_pk=device_pk, step=step, time=start, **values
    )
    await db.execute(
        stmt.on_conflict_do_update(index_elements=["device_pk", "step", "time"], set_=values)
    )


async def expire(db: AsyncSession, cuts: rollup.Cutoffs) -> None:
    """Delete what is past its retention; commit."""
    await db.execute(
        delete(TelemetrySample).where(
            TelemetrySample.rolled.is_(True), TelemetrySample.time < cuts.raw
        )
    )
    await db.execute(delete(TelemetryRollup).where(TelemetryRollup.time < cuts.rollups))
    await db.execute(delete(WorkloadLog).where(WorkloadLog.updated_at < cuts.logs))
    await db.commit()


class Retention:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="telemetry-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run_once(self) -> None:
        settings = self.ctx.settings
        async with self.ctx.session() as db:
            while await fold(db, settings.telemetry_rollup_step) == FOLD_BATCH:
                pass
            await expire(
                db,
                rollup.cutoffs(
                    utcnow(),
                    raw_hours=settings.telemetry_raw_hours,
                    rollup_days=settings.telemetry_rollup_days,
                    log_days=settings.stored_log_days,
                ),
            )

    async def _loop(self) -> None:
        interval = self.ctx.settings.telemetry_pass_interval
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.ctx.session() as db:
                    held = await lease.acquire(db, LEASE, self.ctx.replica, interval * 3)
                if held:
                    await self.run_once()
            except SQLAlchemyError:
                log.exception("telemetry rollup/retention pass failed; trying again next time")
