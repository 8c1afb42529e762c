"""Drives staged rollouts: feeds the pure machine (:mod:`.machine`) what the
devices report and carries out what it answers.

Runs on the scheduler's clock, so only the replica holding the scheduler
lease drives rollouts (two replicas moving the same batch would be harmless
but noisy; two reverting at once would race). Every pass reads the state
from the database and writes it back in the same transaction, so a replica
taking over the lease continues where the last one stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.context import ServerContext
from edgefleet.server.devices.tables import Device
from edgefleet.server.jobs import desired
from edgefleet.server.jobs.assign import assign
from edgefleet.server.jobs.tables import Job, JobDevice
from edgefleet.server.rollouts import machine as m
from edgefleet.server.rollouts.tables import JobRollout

log = logging.getLogger(__name__)


def settings_of(row: JobRollout) -> m.Settings:
    s = row.settings or {}
    return m.Settings(
        max_parallel=int(s.get("max_parallel", 1)),
        canaries=int(s.get("canaries", 0)),
        min_healthy_time=float(s.get("min_healthy_time", 10.0)),
        failure_threshold=float(s.get("failure_threshold", 1)),
        auto_revert=bool(s.get("auto_revert", False)),
        healthy_deadline=float(s.get("healthy_deadline", 1800.0)),
    )


async def device_pks(db: AsyncSession, job: Job, ids: Iterable[str]) -> set[int]:
    wanted = list(set(ids))
    if not wanted:
        return set()
    rows = await db.scalars(select(Device.pk).where(Device.id.in_(wanted)))
    return set(rows)


async def assigned_pks(db: AsyncSession, job: Job) -> set[int]:
    rows = await db.scalars(
        select(JobDevice.device_pk).where(
            JobDevice.job_pk == job.pk, JobDevice.assigned.is_(True), JobDevice.eligible.is_(True)
        )
    )
    return set(rows)


async def carry_out(
    ctx: ServerContext,
    db: AsyncSession,
    job: Job,
    row: JobRollout,
    rollout: m.Rollout,
    actions: list[m.Action],
    actor: str | None = None,
) -> set[int]:
    """Record the machine's new state and do its actions in ``db``'s transaction;
    returns the device pks whose desired state changed (bump is done here; the
    caller commits and pushes)."""
    row.state = rollout.state
    row.reason = rollout.reason
    changed: set[int] = set()
    moving: set[str] = set()
    by = f" ({actor})" if actor else ""
    target = what(row, rollout)
    for action in actions:
        if isinstance(action, m.Move):
            changed |= await device_pks(db, job, action.devices)
            moving.update(action.devices)
            ctx.events.record(
                "job.rollout",
                job.project_pk,
                f"job {job.id}: batch {rollout.current + 1}/{len(rollout.batches)} moves to "
                f"{target}: {', '.join(action.devices)}",
                job_id=job.id,
                data={"batch": rollout.current + 1, "devices": list(action.devices)},
            )
        elif isinstance(action, m.Revert):
            if row.from_version_pk is not None:
                job.version_pk = row.from_version_pk
                job.resolved = row.from_resolved
            changed |= await assign(db, job, row.from_version or "", upgraded=True)
            changed |= await device_pks(db, job, action.devices)
            if job.state in ("running", "completed", "failed"):
                job.state = "deploying"
            ctx.events.record(
                "job.rollout",
                job.project_pk,
                f"job {job.id}: rollout to {target} {rollout.state}{by}, back on "
                f"{back(row, rollout)}: {action.reason}",
                job_id=job.id,
                data={"state": rollout.state, "devices": list(action.devices)},
            )
        elif isinstance(action, m.Paused):
            ctx.events.record(
                "job.rollout",
                job.project_pk,
                f"job {job.id}: rollout to {target} paused{by}: {action.reason}",
                job_id=job.id,
                data={"state": "paused"},
            )
        elif isinstance(action, m.Finished):
            changed |= await assigned_pks(db, job)  # joiners held back get the new version
            ctx.events.record(
                "job.rollout",
                job.project_pk,
                f"job {job.id}: rollout to {target} done",
                job_id=job.id,
                data={"state": "done"},
            )
    await desired.bump(db, changed)
    if moving:  # what "applied" means for these devices: this generation or later
        rows = await db.execute(
            select(Device.id, Device.desired_generation).where(Device.id.in_(sorted(moving)))
        )
        rollout.generations.update({device: gen for device, gen in rows.all()})
    if rollout.state == "done":
        rollout.held = {}  # every device has the new inputs: the previous ones may go
    row.progress = m.to_json(rollout)
    return changed


def what(row: JobRollout, rollout: m.Rollout) -> str:
    """What is rolling, for events and the view: a version, or a configuration change."""
    if rollout.kind == "configuration":
        changes = rollout.held.get("changes") or []
        return "new configuration (" + "; ".join(changes) + ")" if changes else "new configuration"
    return str(row.to_version)


def back(row: JobRollout, rollout: m.Rollout) -> str:
    if rollout.kind == "configuration":
        return "the previous configuration"
    return str(row.from_version)


async def reports(
    db: AsyncSession, job: Job, devices: Iterable[str], generations: dict[str, int] | None = None
) -> dict[str, m.Report]:
    """The latest report of each given device on this job; ``applied`` when the
    device has applied at least the generation it was moved with."""
    wanted = list(set(devices))
    if not wanted:
        return {}
    moved_at = generations or {}
    rows = await db.execute(
        select(
            Device.id,
            JobDevice.state,
            JobDevice.version,
            JobDevice.error,
            JobDevice.updated_at,
            Device.applied_generation,
        )
        .join(JobDevice, JobDevice.device_pk == Device.pk)
        .where(JobDevice.job_pk == job.pk, Device.id.in_(wanted))
    )
    return {
        device_id: m.Report(
            state=state,
            version=version,
            error=error,
            reported_at=updated_at.timestamp(),
            applied=(applied or 0) >= moved_at.get(device_id, 0),
        )
        for device_id, state, version, error, updated_at, applied in rows.all()
    }


# A rollout's state is read, changed and written back by the driver and by an
# operator's pause/resume/abort: this lock (one process) and SELECT ... FOR
# UPDATE (replicas on PostgreSQL) keep one from overwriting the other.
mutex = asyncio.Lock()


async def locked(db: AsyncSession, job_pk: int) -> JobRollout | None:
    """The job's rollout row, locked for this transaction (PostgreSQL)."""
    return await db.scalar(select(JobRollout).where(JobRollout.job_pk == job_pk).with_for_update())


async def drive(ctx: ServerContext) -> None:
    """One pass over every active rollout."""
    async with ctx.session() as db:
        pks = list(
            await db.scalars(select(JobRollout.job_pk).where(JobRollout.state.in_(m.ACTIVE)))
        )
    for pk in pks:
        async with mutex, ctx.session() as db:
            await _drive_one(ctx, db, pk)


async def _drive_one(ctx: ServerContext, db: AsyncSession, job_pk: int) -> None:
    row = await locked(db, job_pk)
    job = await db.scalar(select(Job).where(Job.pk == job_pk))
    if row is None or job is None or row.state not in m.ACTIVE:
        return
    rollout = m.from_json(row.progress)
    event = m.Observe(
        now=time.time(),
        version=row.to_version or "",
        reports=await reports(db, job, rollout.moved, rollout.generations),
    )
    before = m.to_json(rollout)
    actions = m.handle(rollout, event, settings_of(row))
    if not actions and m.to_json(rollout) == before:
        return
    changed = await carry_out(ctx, db, job, row, rollout, actions)
    await db.commit()
    await desired.push(ctx, changed)
