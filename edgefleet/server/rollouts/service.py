"""Rollouts: settings, starting one on a version change, pause/resume/abort,
the update-lock override, and the view shown in ``GET /jobs/{id}``."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import utcnow
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import Conflict
from edgefleet.server.jobs import desired
from edgefleet.server.jobs.tables import Job, JobDevice
from edgefleet.server.rollouts import driver
from edgefleet.server.rollouts import machine as m
from edgefleet.server.rollouts.inputs import HeldInputs
from edgefleet.server.rollouts.schemas import BatchDeviceOut, BatchOut, RolloutIn, RolloutOut
from edgefleet.server.rollouts.tables import JobRollout

Control = Literal["pause", "resume", "abort"]


async def get(db: AsyncSession, job: Job) -> JobRollout | None:
    return await db.scalar(select(JobRollout).where(JobRollout.job_pk == job.pk))


async def configure(db: AsyncSession, job: Job, settings: RolloutIn) -> None:
    """Set (or change) the job's rollout settings; a rollout in progress
    follows the new ones from its next step."""
    row = await get(db, job)
    if row is None:
        row = JobRollout(job_pk=job.pk, state="idle", progress={}, from_resolved={})
        db.add(row)
    row.settings = settings.model_dump(mode="json")
    await db.flush()


async def begin(
    ctx: ServerContext,
    db: AsyncSession,
    job: Job,
    *,
    from_version_pk: int,
    from_version: str,
    from_resolved: dict[str, object],
    to_version: str,
    held: HeldInputs | None = None,
    devices: Iterable[str] | None = None,
) -> bool:
    """The job's spec changed: stage it, if the job has a rollout. True if staged
    (then only the first batch is moved; the others keep ``from_version``, and
    ``held``: the previous secrets/variables of a configuration change).
    ``devices``: only these change (a configuration change); default all."""
    row = await get(db, job)
    if row is None or not row.settings:
        return False  # no rollout block (a row only for a lock override): all at once
    before = m.from_json(row.progress) if row.progress else None
    carried: HeldInputs | None = None
    wanted = set(devices) if devices is not None else None
    if before is not None and row.state in (*m.ACTIVE, *m.REVERTED) and before.held:
        # Devices still held on previous inputs keep them, and take part again.
        carried = HeldInputs.model_validate(before.held)
        if wanted is not None:
            wanted |= {d for batch in before.batches for d in batch}
    if row.state in m.ACTIVE and row.from_version_pk is not None:
        # A new change while one is still staged: start over from the last
        # version every device had, moved devices included.
        from_version_pk, from_version = row.from_version_pk, row.from_version or from_version
        from_resolved = row.from_resolved
        if wanted is not None and before is not None:
            wanted |= {d for batch in before.batches for d in batch}
    if carried is not None and held is not None:
        held = carried.merged(held)
    elif carried is not None:
        held = carried
    query = (
        select(Device.id)
        .join(JobDevice, JobDevice.device_pk == Device.pk)
        .where(
            JobDevice.job_pk == job.pk,
            JobDevice.assigned.is_(True),
            JobDevice.eligible.is_(True),
        )
        .order_by(Device.pk)
    )
    ids = [d for d in await db.scalars(query) if wanted is None or d in wanted]
    rollout, actions = m.begin(ids, driver.settings_of(row), time.time())
    rollout.kind = "version" if from_version != to_version else "configuration"
    rollout.held = held.model_dump(mode="json") if held is not None and not held.empty() else {}
    row.from_version_pk = from_version_pk
    row.from_version = from_version
    row.from_resolved = dict(from_resolved)
    row.to_version = to_version
    row.locks_overridden_at = None
    ctx.events.record(
        "job.rollout",
        job.project_pk,
        f"job {job.id}: staged rollout {from_version} -> {driver.what(row, rollout)} "
        f"in {len(rollout.batches)} batch(es)",
        job_id=job.id,
    )
    await driver.carry_out(ctx, db, job, row, rollout, actions)
    return True


async def control(
    ctx: ServerContext, db: AsyncSession, caller: Caller, job: Job, what: Control
) -> JobRollout:
    """Pause, resume or abort the job's rollout in progress."""
    caller.require(job.project_pk, Permission.MANAGE_APPS, f"job {job.id!r}")
    async with driver.mutex:
        return await _control(ctx, db, caller, job, what)


async def _control(
    ctx: ServerContext, db: AsyncSession, caller: Caller, job: Job, what: Control
) -> JobRollout:
    row = await driver.locked(db, job.pk)
    if row is None or row.state not in m.ACTIVE:
        state = "no rollout" if row is None else f"its rollout is {row.state}"
        raise Conflict(f"job {job.id} has no rollout in progress ({state})")
    rollout = m.from_json(row.progress)
    event: m.Event
    if what == "pause":
        event = m.Pause(f"paused by {caller.name}")
    elif what == "resume":
        event = m.Resume(time.time())
    else:
        event = m.Abort(f"aborted by {caller.name}")
    actions = m.handle(rollout, event, driver.settings_of(row))
    changed = await driver.carry_out(ctx, db, job, row, rollout, actions, actor=caller.name)
    if what == "resume":
        ctx.events.record(
            "job.rollout",
            job.project_pk,
            f"job {job.id}: rollout to {row.to_version} resumed ({caller.name})",
            job_id=job.id,
            actor=caller.name,
        )
    await db.commit()
    await desired.push(ctx, changed)
    return row


async def override_locks(
    ctx: ServerContext, db: AsyncSession, caller: Caller, job: Job
) -> JobRollout:
    """Upgrades and restarts of this job stop waiting for update locks held now."""
    caller.require(job.project_pk, Permission.MANAGE_APPS, f"job {job.id!r}")
    row = await get(db, job)
    if row is None:
        row = JobRollout(job_pk=job.pk, state="idle", settings={}, progress={}, from_resolved={})
        db.add(row)
    row.locks_overridden_at = utcnow()
    changed = await driver.assigned_pks(db, job)
    await desired.bump(db, changed)
    ctx.events.record(
        "job.rollout",
        job.project_pk,
        f"job {job.id}: update locks overridden by {caller.name}",
        job_id=job.id,
        actor=caller.name,
    )
    await db.commit()
    await desired.push(ctx, changed)
    return row


async def view(db: AsyncSession, job: Job, row: JobRollout | None) -> RolloutOut | None:
    """The job's rollout as the API shows it; ``row`` is its rollout row (or
    None), which the job's view reads with everything else about the job."""
    if row is None or not row.settings:
        return None
    settings = RolloutIn.model_validate(row.settings or {})
    out = RolloutOut(
        **settings.model_dump(),
        state=row.state,
        from_version=row.from_version,
        to_version=row.to_version,
        reason=row.reason,
        locks_overridden_at=row.locks_overridden_at,
        updated_at=row.updated_at,
    )
    if not row.progress:
        return out
    rollout = m.from_json(row.progress)
    out.kind = rollout.kind
    out.changes = list(rollout.held.get("changes") or [])
    out.holding_previous_configuration = bool(rollout.held) and row.state in m.REVERTED
    ids = [d for batch in rollout.batches for d in batch]
    found = await db.execute(
        select(
            Device.id, Device.name, JobDevice.version, JobDevice.error, Device.applied_generation
        )
        .join(JobDevice, JobDevice.device_pk == Device.pk)
        .where(JobDevice.job_pk == job.pk, Device.id.in_(ids))
    )
    seen = {row[0]: row[1:] for row in found.all()}
    for index, batch in enumerate(rollout.batches):
        devices = []
        for device in batch:
            name, version, error, applied = seen.get(device, ("", None, None, 0))
            # a configuration change keeps the version: it is in once applied, without error
            arrived = (applied or 0) >= rollout.generations.get(device, 0) and not error
            if device in rollout.failed:
                state = "failed"
            elif device in rollout.moved:
                state = "healthy" if version == row.to_version and arrived else "moved"
            elif row.state in ("reverted", "aborted") and index <= rollout.current:
                state = "reverted"
            else:
                state = "waiting"
            devices.append(BatchDeviceOut(device=device, name=name, state=state, version=version))
        if index < rollout.current or row.state == "done":
            batch_state = "done"
        elif index == rollout.current:
            batch_state = {"reverted": "reverted", "aborted": "reverted"}.get(
                row.state, "in progress"
            )
        else:
            batch_state = "waiting"
        out.batches.append(BatchOut(index=index + 1, state=batch_state, devices=devices))
    out.batch_count = len(rollout.batches)
    out.batch = min(rollout.current + 1, len(rollout.batches)) if rollout.batches else None
    out.failures = list(rollout.failed)
    return out
