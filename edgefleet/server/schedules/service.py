"""Periodic jobs: storing a job's schedule, listing its runs, and the
per-device view (last run, next fire) the job's status carries.

Routes and the jobs service call in here; this module owns the queries on
``job_schedules`` and ``job_runs``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.db.base import utcnow
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import Invalid
from edgefleet.server.jobs.tables import Job
from edgefleet.server.pagination import Page, PageParams, keyset_rows
from edgefleet.server.schedules import plan
from edgefleet.server.schedules.schemas import RunOut, ScheduleOut
from edgefleet.server.schedules.tables import JobRun, JobSchedule
from edgefleet.spec.model import AppSpec
from edgefleet.wire.schedule import Schedule, next_fire

STATES = ("ok", "failed", "skipped")


def check(schedule: Schedule, spec: AppSpec, *, min_period: float) -> None:
    """Refuse a schedule that cannot work with this spec (422 naming the
    field); called before the job is stored."""
    plan.check(schedule, spec, min_period=min_period, now=utcnow())


def configure(db: AsyncSession, job: Job, schedule: Schedule) -> None:
    """Store ``schedule`` with the (flushed) job; the caller commits."""
    db.add(
        JobSchedule(
            job_pk=job.pk,
            cron=schedule.cron,
            timezone=schedule.timezone,
            overlap=schedule.overlap,
        )
    )


async def replace(db: AsyncSession, job: Job, schedule: Schedule) -> None:
    """A periodic job's new schedule (checked by the caller); the caller commits."""
    row = await db.get(JobSchedule, job.pk)
    assert row is not None
    row.cron, row.timezone, row.overlap = schedule.cron, schedule.timezone, schedule.overlap


async def schedule_of(db: AsyncSession, job: Job) -> Schedule | None:
    row = await db.get(JobSchedule, job.pk)
    return None if row is None else plan.as_schedule(row)


def view(schedule: Schedule, now: datetime | None = None) -> ScheduleOut:
    return ScheduleOut(
        cron=schedule.cron,
        timezone=schedule.timezone,
        overlap=schedule.overlap,
        next=next_fire(schedule, now or utcnow()),
    )


def _out(run: JobRun, device_id: str, device_name: str) -> RunOut:
    return RunOut(
        id=run.run_id,
        device=device_id,
        device_name=device_name,
        scheduled=run.scheduled,
        started=run.started,
        finished=run.finished,
        exit_code=run.exit_code,
        state=run.state,
        error=run.error,
        services=run.services or {},
        received_at=run.received_at,
    )


async def page(
    db: AsyncSession,
    job: Job,
    params: PageParams,
    *,
    device: str | None = None,
    state: str | None = None,
) -> Page[RunOut]:
    """Runs of ``job``, newest first (by arrival); the cursor walks down."""
    query = (
        select(JobRun, Device.id, Device.name)
        .join(Device, Device.pk == JobRun.device_pk)
        .where(JobRun.job_pk == job.pk)
    )
    if device:
        named = (Device.id == device) | (Device.name == device)
        known = await db.scalar(
            select(func.count()).where(Device.project_pk == job.project_pk, named)
        )
        if not known:
            raise Invalid(f"device: no device {device[:64]!r} in the job's project", field="device")
        query = query.where(named)
    if state:
        states = [s.strip() for s in state.split(",") if s.strip()]
        unknown = [s for s in states if s not in STATES]
        if unknown:
            raise Invalid(
                f"state: {unknown[0][:32]!r} is not one of {', '.join(STATES)}", field="state"
            )
        query = query.where(JobRun.state.in_(states))
    found = await keyset_rows(
        db, query, JobRun.pk, params, key=lambda row: int(row[0].pk), newest_first=True
    )
    return Page(items=[_out(run, i, n) for run, i, n in found.items], next=found.next)


async def recent(db: AsyncSession, job: Job, limit: int = 20) -> list[RunOut]:
    """The newest runs of ``job`` (the portal's runs section)."""
    return (await page(db, job, PageParams(limit=limit, after=0))).items


async def decorate(db: AsyncSession, job: Job, schedule: Schedule, items: list[Any]) -> None:
    """Add ``last_run`` and ``next_run`` to the job's per-device rows (JSON
    dicts, in place): the newest run of each device shown, in one query."""
    ids = [item["device"] for item in items if isinstance(item, dict) and "device" in item]
    if not ids:
        return
    newest = (
        select(JobRun.device_pk, func.max(JobRun.pk).label("pk"))
        .where(JobRun.job_pk == job.pk)
        .group_by(JobRun.device_pk)
        .subquery()
    )
    rows = await db.execute(
        select(JobRun, Device.id, Device.name)
        .join(newest, and_(newest.c.pk == JobRun.pk))
        .join(Device, Device.pk == JobRun.device_pk)
        .where(Device.id.in_(ids))
    )
    last = {i: _out(run, i, n).model_dump(mode="json") for run, i, n in rows.all()}
    upcoming = view(schedule).model_dump(mode="json")["next"]
    for item in items:
        item["last_run"] = last.get(item["device"])
        item["next_run"] = upcoming if item.get("state") != "removed" else None
