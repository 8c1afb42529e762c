"""Per-device job status from agents, written in batches.

Agents report whenever something changes; during a fan-out that is a few
thousand reports a second. Reports are coalesced per (device, job) in
memory and flushed every ``flush_every`` seconds, :data:`CHUNK` reports per
transaction with a turn of the event loop between; each affected job's
overall state is then recomputed with one GROUP BY query.

A report that says what its row already holds is not written: every agent
repeats its jobs' statuses in its hello, so after a server restart 10,000
reconnecting agents would otherwise rewrite 10,000 unchanged rows, holding
SQLite's one writer (and the pool connections of the arrivals waiting for
it) while the storm is being admitted. A row's ``updated_at`` is therefore
when its status last changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.agent_session import AgentSession
from edgefleet.server.applications.tables import AppVersion
from edgefleet.server.context import ServerContext
from edgefleet.server.db.among import among
from edgefleet.server.db.base import utcnow
from edgefleet.server.jobs import rollout
from edgefleet.server.jobs.assign import active
from edgefleet.server.jobs.tables import Job, JobDevice, job_device_update
from edgefleet.wire.messages import Hello, JobStatusReport
from edgefleet.wire.status import JobStatus

log = logging.getLogger(__name__)


CHUNK = 200
"""Reports written per transaction, with a turn of the event loop between: a
fan-out to 10,000 devices flushed as one held the loop for most of a second
(building the rows and the ORM's bulk update), stalling every request. At 500
a loop-lag watchdog still caught a chunk's update (psycopg's pipelined
executemany runs on the loop) in the stalls of a landing on PostgreSQL."""

Key = tuple[int, str]
"""(device pk, job id)"""
Reported = tuple[AgentSession, JobStatus]


class StatusSink:
    def __init__(self, ctx: ServerContext, flush_every: float = 0.1) -> None:
        self.ctx = ctx
        self.flush_every = flush_every
        self._pending: dict[Key, Reported] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.ctx.hub.on(JobStatusReport, self.on_report)
        self.ctx.hub.on_connect(self.on_hello)
        self._task = asyncio.create_task(self._run(), name="job-status")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.flush()
        except (SQLAlchemyError, OSError):  # agents report again in their next hello
            log.exception("writing the last job statuses at stop failed")

    async def on_report(self, session: AgentSession, report: JobStatusReport) -> None:
        self.add(session, report.statuses)

    async def on_hello(self, session: AgentSession, hello: Hello | None) -> None:
        if hello is not None:
            self.add(session, hello.jobs)

    def add(self, session: AgentSession, statuses: Iterable[JobStatus]) -> None:
        for status in statuses:
            self._pending[(session.device.pk, status.job_id)] = (session, status)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.flush_every)
            try:
                await self.flush()
            except Exception:  # the loop outlives one bad batch; later reports still land
                log.exception("writing job statuses failed")

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        reports = list(batch.items())
        async with self.ctx.session() as db:
            job_ids = {job_id for _, job_id in batch}
            jobs = {j.id: j for j in await db.scalars(select(Job).where(Job.id.in_(job_ids)))}
            touched: set[int] = set()
            for start in range(0, len(reports), CHUNK):
                if start:
                    await asyncio.sleep(0)  # requests waiting on the loop go first
                touched |= await self._write(db, jobs, reports[start : start + CHUNK])
            await refresh_jobs(self.ctx, db, [j for j in jobs.values() if j.pk in touched])

    async def _write(
        self, db: AsyncSession, jobs: dict[str, Job], reports: list[tuple[Key, Reported]]
    ) -> set[int]:
        """One chunk of reports in one transaction; returns the job pks it changed."""
        keys = [(jobs[j].pk, d) for (d, j), _ in reports if j in jobs]
        if not keys:
            return set()
        found = await db.execute(
            select(
                JobDevice.pk,
                JobDevice.job_pk,
                JobDevice.device_pk,
                JobDevice.state,
                JobDevice.error,
                JobDevice.eligible,
                JobDevice.services,
                JobDevice.version,
                JobDevice.waiting,
            ).where(
                among(db, JobDevice.job_pk, {k[0] for k in keys}),
                among(db, JobDevice.device_pk, sorted({k[1] for k in keys})),
            )
        )
        rows = {(r.job_pk, r.device_pk): r for r in found.all()}  # plain rows, not ORM objects
        now = utcnow()
        changes: list[dict[str, Any]] = []
        touched: set[int] = set()
        for (device_pk, job_id), (session, status) in reports:
            job = jobs.get(job_id)
            row = rows.get((job.pk, device_pk)) if job else None
            if job is None or row is None or not row.eligible:
                continue
            state = status.state
            services = {k: v.model_dump(mode="json") for k, v in status.services.items()}
            said = (state, status.error, status.version, status.waiting, services)
            if said == (row.state, row.error, row.version, row.waiting, row.services):
                continue  # repeated (a hello after a reconnect): nothing to write
            if state != row.state or status.error != row.error:
                self._event(job, session, state, status.error)
            changes.append(
                {
                    "row_pk": row.pk,
                    "new_state": state,
                    "new_error": status.error,
                    "new_services": services,
                    "new_version": status.version,
                    "new_waiting": status.waiting,
                    "new_updated_at": now,
                }
            )
            touched.add(job.pk)
        if not changes:  # only read: no commit to queue behind SQLite's one writer
            return touched
        await db.execute(_UPDATE, changes)
        await db.commit()
        return touched

    def _event(self, job: Job, session: AgentSession, state: str, error: str | None) -> None:
        message = f"job {job.id} on {session.device.name}: {state}"
        if error:
            message += f" ({error})"
        self.ctx.events.record(
            "job.device",
            job.project_pk,
            message,
            device_id=session.device.id,
            job_id=job.id,
            data={"state": state, "error": error},
        )


async def refresh_jobs(ctx: ServerContext, db: AsyncSession, jobs: Iterable[Job]) -> None:
    """Recompute each job's overall state from its devices (one GROUP BY each)."""
    for job in jobs:
        version = await db.scalar(select(AppVersion.version).where(AppVersion.pk == job.version_pk))
        has_error = JobDevice.error.is_not(None)
        grouped = await db.execute(
            select(
                JobDevice.state,
                JobDevice.eligible,
                JobDevice.assigned,
                JobDevice.version,
                has_error,
                func.count(),
            )
            .where(JobDevice.job_pk == job.pk)
            .group_by(
                JobDevice.state,
                JobDevice.eligible,
                JobDevice.assigned,
                JobDevice.version,
                has_error,
            )
        )
        views = [
            rollout.DeviceView(
                state=state,
                eligible=bool(eligible),
                assigned=bool(assigned),
                version=row_version,
                error="error" if errored else None,
                count=int(count),
            )
            for state, eligible, assigned, row_version, errored, count in grouped.all()
        ]
        waiting = job.start is not None and not active(job) and job.state not in rollout.TERMINAL
        state, error = rollout.aggregate(job.state, views, version or "", waiting)
        if (state, error) != (job.state, job.error):
            old = job.state
            await db.execute(update(Job).where(Job.pk == job.pk).values(state=state, error=error))
            await db.commit()
            job.state, job.error = state, error
            if state != old:
                ctx.events.record(
                    "job.state",
                    job.project_pk,
                    f"job {job.id} is {state}" + (f": {error}" if error else ""),
                    job_id=job.id,
                    data={"state": state, "previous": old},
                )


_UPDATE = job_device_update("state", "error", "services", "version", "waiting", "updated_at")
"""A job device row's reported status, by primary key: a Core executemany,
without the ORM bulk update's per-row bookkeeping."""
