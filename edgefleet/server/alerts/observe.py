"""What the rules look at, read from the database in a few queries per pass.

- offline: devices not online now that were seen before, with seconds since last seen;
- job_failed: job devices in state ``failed`` of jobs still active;
- disk: each device's latest telemetry sample (:mod:`edgefleet.server.telemetry`'s table);
- backlog: records waiting on each device, summed over its data streams
  (the agent's ``DataBacklog`` reports, :mod:`edgefleet.server.data`).

Only projects that have enabled rules of a kind are queried for it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.alerts.evaluate import Observation
from edgefleet.server.data.tables import DataStream
from edgefleet.server.devices.query import online_clause
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.jobs.tables import Job, JobDevice
from edgefleet.server.telemetry.tables import TelemetrySample

ACTIVE_JOB_EXCLUDED = ("cancelled", "expired", "completed")


def _device(d: Device) -> dict[str, str]:
    return {"device": d.id, "device_name": d.name}


async def offline(db: AsyncSession, projects: set[int], now: datetime) -> list[Observation]:
    rows = await db.scalars(
        select(Device)
        .outerjoin(Presence, Presence.device_pk == Device.pk)
        .where(
            Device.project_pk.in_(projects),
            Device.last_seen.is_not(None),
            ~online_clause(now),
        )
    )
    out = []
    for d in rows:
        assert d.last_seen is not None
        seconds = max(0.0, (now - d.last_seen).total_seconds())
        out.append(
            Observation(d.project_pk, "device_offline", f"device:{d.id}", seconds, _device(d))
        )
    return out


async def job_failed(db: AsyncSession, projects: set[int]) -> list[Observation]:
    rows = await db.execute(
        select(Job, Device, JobDevice.error)
        .join(JobDevice, JobDevice.job_pk == Job.pk)
        .join(Device, Device.pk == JobDevice.device_pk)
        .where(
            Job.project_pk.in_(projects),
            Job.state.not_in(ACTIVE_JOB_EXCLUDED),
            JobDevice.state == "failed",
            JobDevice.assigned.is_(True),
        )
    )
    out = []
    for job, d, error in rows.all():
        labels = {**_device(d), "job": job.id, "job_name": job.name, "error": (error or "")[:500]}
        out.append(
            Observation(job.project_pk, "job_failed", f"job:{job.id}/device:{d.id}", 1.0, labels)
        )
    return out


async def disk(db: AsyncSession, projects: set[int]) -> list[Observation]:
    latest = (
        select(TelemetrySample.device_pk, func.max(TelemetrySample.time).label("time"))
        .join(Device, Device.pk == TelemetrySample.device_pk)
        .where(Device.project_pk.in_(projects))
        .group_by(TelemetrySample.device_pk)
        .subquery()
    )
    rows = await db.execute(
        select(Device, TelemetrySample.disk)
        .join(TelemetrySample, TelemetrySample.device_pk == Device.pk)
        .join(
            latest,
            (latest.c.device_pk == TelemetrySample.device_pk)
            & (latest.c.time == TelemetrySample.time),
        )
    )
    return [
        Observation(d.project_pk, "disk_above", f"device:{d.id}", float(pct), _device(d))
        for d, pct in rows.all()
    ]


async def backlog(db: AsyncSession, projects: set[int]) -> list[Observation]:
    rows = await db.execute(
        select(Device, func.sum(DataStream.pending))
        .join(DataStream, DataStream.device_id == Device.id)
        .where(Device.project_pk.in_(projects))
        .group_by(Device.pk)
    )
    return [
        Observation(d.project_pk, "backlog_above", f"device:{d.id}", float(n or 0), _device(d))
        for d, n in rows.all()
    ]


async def observe(db: AsyncSession, kinds: dict[str, set[int]], now: datetime) -> list[Observation]:
    """``kinds`` maps a rule kind to the projects with enabled rules of it."""
    out: list[Observation] = []
    if kinds.get("device_offline"):
        out += await offline(db, kinds["device_offline"], now)
    if kinds.get("job_failed"):
        out += await job_failed(db, kinds["job_failed"])
    if kinds.get("disk_above"):
        out += await disk(db, kinds["disk_above"])
    if kinds.get("backlog_above"):
        out += await backlog(db, kinds["backlog_above"])
    return out
