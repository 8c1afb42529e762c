"""Configuration changes through the staged rollout.

A rotated secret or a variable set or unset changes no job's version, yet it
may change the resolved spec (hence the revision) of some jobs on some
devices. For a job with a ``rollout`` block that change goes batch by batch
like a version change; other jobs get it at once, as before.

The secrets and variables services call, around their change::

    snapshot = await config.before(ctx, db, project_pk)     # rendered specs, before
    ... change the row, commit ...
    await config.after(ctx, db, snapshot, inputs.secret(...))  # stage what changed

:func:`after` renders the same devices again and compares, per job and
device, the spec each one would be told to run. The devices whose spec
changed make the rollout (devices whose spec is the same are not touched);
the previous value of what changed (:mod:`.inputs`) is kept in the rollout
for the devices it holds back. Rendering twice is the honest test of
"changes the resolved spec": Compose interpolation, precedence and which
services use a secret all count, with no second copy of those rules.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.applications.tables import AppVersion
from edgefleet.server.context import ServerContext
from edgefleet.server.devices.tables import Device
from edgefleet.server.jobs import desired
from edgefleet.server.jobs.tables import Job, JobDevice
from edgefleet.server.rollouts import service
from edgefleet.server.rollouts.inputs import HeldInputs
from edgefleet.server.rollouts.tables import JobRollout

Rendered = dict[tuple[int, str], dict[str, Any]]  # (device pk, job id) -> spec


@dataclass
class Snapshot:
    """The specs the staged jobs' devices were told before a configuration change
    (``told``), and what the current values alone gave then (``raw``: the same,
    unless a rollout holds some devices on previous inputs)."""

    jobs: dict[str, int]  # job id -> pk, the project's jobs that have a rollout block
    device_pks: set[int]
    told: Rendered = field(default_factory=dict)
    raw: Rendered = field(default_factory=dict)


async def _staged_jobs(db: AsyncSession, project_pk: int) -> dict[str, int]:
    rows = await db.execute(
        select(Job.id, Job.pk, JobRollout.settings)
        .join(JobRollout, JobRollout.job_pk == Job.pk)
        .where(Job.project_pk == project_pk, Job.state.not_in(desired.INACTIVE))
    )
    return {job_id: pk for job_id, pk, settings in rows.all() if settings}


async def _render(
    ctx: ServerContext, db: AsyncSession, snapshot: Snapshot, *, held: bool
) -> Rendered:
    config = ctx.workload_config
    states = await desired.desired_for(
        db,
        snapshot.device_pks,
        ctx.registry_auth,
        config if held else functools.partial(config, held=False),
    )
    return {
        (pk, a.job_id): a.spec.model_dump(mode="json")
        for pk, (_, state) in states.items()
        for a in state.jobs
        if a.job_id in snapshot.jobs
    }


async def before(
    ctx: ServerContext, db: AsyncSession, project_pk: int, device_pk: int | None = None
) -> Snapshot | None:
    """What the project's staged jobs (on ``device_pk`` only, if given) are told
    now; None when the project has no job with a rollout block."""
    jobs = await _staged_jobs(db, project_pk)
    if not jobs:
        return None
    query = select(JobDevice.device_pk).where(
        JobDevice.job_pk.in_(jobs.values()),
        JobDevice.assigned.is_(True),
        JobDevice.eligible.is_(True),
    )
    if device_pk is not None:
        query = query.where(JobDevice.device_pk == device_pk)
    snapshot = Snapshot(jobs=jobs, device_pks=set(await db.scalars(query)))
    if not snapshot.device_pks:
        return None
    snapshot.told = await _render(ctx, db, snapshot, held=True)
    snapshot.raw = await _render(ctx, db, snapshot, held=False)
    return snapshot


async def after(
    ctx: ServerContext, db: AsyncSession, snapshot: Snapshot | None, held: HeldInputs
) -> None:
    """The change is committed: stage it for every job whose spec it changed on
    some device. Commits; the caller then re-sends desired state as usual
    (held-back devices get the previous inputs, so nothing restarts there).

    A job is touched when the change alters what the current values give on
    some device; its devices to move are those whose spec would differ from
    what they are told now (devices held on previous inputs included). A
    change that does not touch a job leaves its held devices where they are."""
    if snapshot is None:
        return
    now = await _render(ctx, db, snapshot, held=False)
    ids = dict((await db.execute(select(Device.pk, Device.id).where(
        Device.pk.in_(snapshot.device_pks)))).all())  # fmt: skip
    touched = {key[1] for key, spec in now.items() if snapshot.raw.get(key) != spec}
    touched |= {key[1] for key in snapshot.raw if key not in now}
    moving: dict[str, set[str]] = {job_id: set() for job_id in touched}
    for key in set(now) | set(snapshot.told):
        device_pk, job_id = key
        if job_id in touched and now.get(key) != snapshot.told.get(key):
            moving[job_id].add(ids[device_pk])
    for job_id, devices in sorted(moving.items()):
        job = await db.scalar(select(Job).where(Job.pk == snapshot.jobs[job_id]))
        if job is None or not devices:
            continue
        version = await db.scalar(select(AppVersion.version).where(AppVersion.pk == job.version_pk))
        await service.begin(
            ctx,
            db,
            job,
            from_version_pk=job.version_pk,
            from_version=version or "",
            from_resolved=dict(job.resolved),
            to_version=version or "",
            held=held,
            devices=devices,
        )
    if touched:
        await db.commit()
