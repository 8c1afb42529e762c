"""Runs of periodic jobs, as devices report them.

    agent --ScheduleRuns (<= 200 runs)--> RunIngest.on_runs
        periodic jobs assigned to this device only; others acknowledged, dropped
        INSERT ... ON CONFLICT (device, run id) DO NOTHING   exactly once
        keep the newest --schedule-runs-kept per (job, device)
        commit --> ScheduleRunsAck(ids)  --> the agent forgets them

Reports are handled in line, one at a time per connection (the agent's
reader waits), so a device flooding reports slows only itself, and what it
can store is bounded per job by the setting. A run is acknowledged once it
is committed, or when the server will never take it (job gone, not this
device's): the agent then drops it instead of sending it forever.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.agent_session import AgentSession
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import utcnow
from edgefleet.server.db.upsert import insert_for
from edgefleet.server.jobs.tables import Job, JobDevice
from edgefleet.server.schedules.tables import JobRun, JobSchedule
from edgefleet.wire.messages import ScheduleRuns, ScheduleRunsAck
from edgefleet.wire.schedule import RunRecord, utc

log = logging.getLogger(__name__)


async def store(db: AsyncSession, device_pk: int, runs: list[RunRecord], keep: int) -> list[str]:
    """Store what is new of ``runs`` for one device, trim to ``keep`` runs per
    job, commit; returns the ids the device may forget (all of them)."""
    job_ids = {r.job for r in runs}
    linked = dict(
        (
            await db.execute(
                select(Job.id, Job.pk)
                .join(JobDevice, JobDevice.job_pk == Job.pk)
                .join(JobSchedule, JobSchedule.job_pk == Job.pk)  # periodic jobs only
                .where(Job.id.in_(job_ids), JobDevice.device_pk == device_pk)
            )
        ).all()
    )
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "job_pk": linked[r.job],
            "device_pk": device_pk,
            "run_id": r.id,
            "scheduled": utc(r.scheduled),
            "started": utc(r.started) if r.started else None,
            "finished": utc(r.finished) if r.finished else None,
            "exit_code": r.exit_code,
            "state": r.state,
            "error": r.error,
            "services": dict(r.services),
            "received_at": now,
        }
        for r in runs[-keep:]
        if r.job in linked
    ]
    if rows:
        await db.execute(insert_for(db, JobRun).on_conflict_do_nothing(), rows)
        for job_pk in {row["job_pk"] for row in rows}:
            cutoff = await db.scalar(
                select(JobRun.pk)
                .where(JobRun.job_pk == job_pk, JobRun.device_pk == device_pk)
                .order_by(JobRun.pk.desc())
                .offset(keep)
                .limit(1)
            )
            if cutoff is not None:
                await db.execute(
                    delete(JobRun).where(
                        JobRun.job_pk == job_pk,
                        JobRun.device_pk == device_pk,
                        JobRun.pk <= cutoff,
                    )
                )
    await db.commit()
    return [r.id for r in runs]


class RunIngest:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def register(self) -> None:
        self.ctx.hub.on(ScheduleRuns, self.on_runs)

    async def on_runs(self, session: AgentSession, message: ScheduleRuns) -> None:
        if not message.runs:
            return
        keep = self.ctx.settings.schedule_runs_kept
        try:
            async with self.ctx.session() as db:
                ids = await store(db, session.device.pk, message.runs, keep)
        except SQLAlchemyError:
            # Not acknowledged: the agent keeps the runs and sends them again.
            log.exception("storing %d runs from %s failed", len(message.runs), session.device.id)
            return
        # Not acknowledged when the send fails: the agent sends them again and
        # the unique (device, run id) keeps them stored once.
        await session.send(ScheduleRunsAck(ids=ids))


async def start(ctx: ServerContext) -> None:
    """Feature start hook: take run reports from agents."""
    RunIngest(ctx).register()
