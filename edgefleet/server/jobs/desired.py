"""What each device should run, built from the database in one query for many
devices (a fan-out to 1,000 devices is one query, not 1,000), and pushed
through the hub the moment it changes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.applications.tables import Application, AppVersion
from edgefleet.server.context import RegistryAuth, ServerContext
from edgefleet.server.db.among import among
from edgefleet.server.devices.tables import Device
from edgefleet.server.jobs.tables import Job, JobDevice
from edgefleet.server.loans import view as loan_view
from edgefleet.server.projects.tables import Project
from edgefleet.server.rollouts import pins as rollout_pins
from edgefleet.server.schedules import plan as schedule_plan
from edgefleet.spec.images import registry_of
from edgefleet.spec.model import AppSpec
from edgefleet.wire.messages import DesiredState
from edgefleet.wire.workload import DeviceContext, JobAssignment

INACTIVE = ("cancelled", "expired")
CHUNK = 500
_DEVICES = cast(Table, Device.__table__)

Render = Callable[[AsyncSession, dict[int, tuple[str, DesiredState]]], Awaitable[None]]
"""Lays variables, secrets and configs over built states (``ctx.workload_config``)."""


def _pulled_from(spec: AppSpec, auth: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Only the credentials of registries this job's images come from: a device
    never receives a login it does not need."""
    if not auth:
        return {}
    hosts = {registry_of(s.image) for s in spec.services.values() if s.image}
    return {host: login for host, login in auth.items() if host in hosts}


async def bump(db: AsyncSession, device_pks: Iterable[int]) -> None:
    pks = sorted(set(device_pks))
    for start in range(0, len(pks), CHUNK):
        chunk = pks[start : start + CHUNK]
        await db.execute(
            update(Device)
            .where(Device.pk.in_(chunk))
            .values(desired_generation=Device.desired_generation + 1)
        )


@dataclass(frozen=True)
class _Job:
    """What every device of one job receives alike, read and parsed once per
    call rather than once per device (a job row carries its whole spec)."""

    job: Job
    application: str
    version: str
    project_id: str
    spec: AppSpec


async def _load_jobs(db: AsyncSession, job_pks: set[int], into: dict[int, _Job]) -> None:
    if not job_pks:
        return
    rows = await db.execute(
        select(Job, Application.name, AppVersion.version, Project.id)
        .join(Application, Application.pk == Job.application_pk)
        .join(AppVersion, AppVersion.pk == Job.version_pk)
        .join(Project, Project.pk == Job.project_pk)
        .where(Job.pk.in_(job_pks))
    )
    for job, application, version, project_id in rows.all():
        into[job.pk] = _Job(
            job, application, version, project_id, AppSpec.model_validate(job.resolved)
        )


async def desired_for(
    db: AsyncSession,
    device_pks: Iterable[int],
    registry_auth: RegistryAuth | None = None,
    workload_config: Render | None = None,
) -> dict[int, tuple[str, DesiredState]]:
    """{device_pk: (device_id, DesiredState)} for every device given.
    ``workload_config`` (:mod:`edgefleet.server.variables.render`) lays each
    device's variables, sealed secrets and configs over the jobs' specs."""
    pks = sorted(set(device_pks))
    result: dict[int, tuple[str, DesiredState]] = {}
    jobs: dict[int, _Job] = {}
    for start in range(0, len(pks), CHUNK):
        chunk = pks[start : start + CHUNK]
        devices = await db.execute(
            select(
                Device.pk,
                Device.id,
                Device.desired_generation,
                Device.name,
                Device.labels,
                Device.meta,
                Device.project_pk,
            ).where(among(db, Device.pk, chunk))
        )
        contexts: dict[int, DeviceContext] = {}
        owners: dict[int, int] = {}  # a guest job (a lent device) gets the guest's view
        for pk, device_id, generation, name, labels, meta, owner in devices.all():
            owners[pk] = owner
            result[pk] = (device_id, DesiredState(generation=generation, jobs=[]))
            contexts[pk] = DeviceContext(name=name, labels=labels or {}, metadata=meta or {})
        rows = (
            await db.execute(
                select(JobDevice.device_pk, JobDevice.job_pk)
                .join(Job, Job.pk == JobDevice.job_pk)
                .where(
                    among(db, JobDevice.device_pk, chunk),
                    JobDevice.assigned.is_(True),
                    JobDevice.eligible.is_(True),
                    Job.state.not_in(INACTIVE),
                )
                .order_by(JobDevice.job_pk)
            )
        ).all()
        await _load_jobs(db, {job_pk for _, job_pk in rows} - jobs.keys(), jobs)
        auth: dict[int, dict[str, dict[str, str]]] = {}
        if registry_auth is not None and rows:
            auth = await registry_auth(db, {jobs[job_pk].job.project_pk for _, job_pk in rows})
        staged = await rollout_pins.load(db, {job_pk for _, job_pk in rows})
        for device_pk, job_pk in rows:
            known = jobs[job_pk]
            job = known.job
            result[device_pk][1].jobs.append(
                JobAssignment(
                    job_id=job.id,
                    project_id=known.project_id,
                    application=known.application,
                    version=known.version,
                    spec=known.spec,
                    end=job.end,
                    registry_auth=_pulled_from(known.spec, auth.get(job.project_pk, {})),
                    device=contexts[device_pk]
                    if owners[device_pk] == job.project_pk
                    else await loan_view.guest_context(
                        db, device_pk, job.project_pk, contexts[device_pk]
                    ),
                )
            )
            jobs_here = result[device_pk][1].jobs  # a staged rollout may hold this device back
            jobs_here[-1] = staged.adjust(job_pk, result[device_pk][0], jobs_here[-1])
    await schedule_plan.attach(db, [state for _, state in result.values()])  # periodic jobs
    if workload_config is not None:
        await workload_config(db, result)
    return result


async def push(ctx: ServerContext, device_pks: Iterable[int]) -> int:
    """Send fresh desired state to the given devices; returns how many were online.

    Built and sent :data:`CHUNK` devices at a time, yielding to the event loop
    between chunks: a fan-out to 10,000 devices otherwise held the loop (and
    every API request behind it) for the seconds it takes to build and encode
    10,000 states, and held all of them in memory at once."""
    pks = sorted(set(device_pks))
    delivered = 0
    for start in range(0, len(pks), CHUNK):
        async with ctx.session() as db:
            states = await desired_for(
                db, pks[start : start + CHUNK], ctx.registry_auth, ctx.workload_config
            )
        for device_id, state in states.values():
            if await ctx.hub.deliver(device_id, state):
                delivered += 1
        await asyncio.sleep(0)
    return delivered


async def resend(ctx: ServerContext, device_pks: Iterable[int]) -> int:
    """Desired state again to devices still behind it (the scheduler's repeat of
    pushes that never arrived), except those whose connection here was already
    sent their current generation: what a live connection was sent arrived, and
    its agent is still applying it (pulling, starting). Right after a fan-out to
    10,000 devices most are still at work when the repeat comes due, and
    building and sending them all their state again held the event loop while
    their reports landed (issue 16). Returns how many were sent to."""
    pks = sorted(set(device_pks))
    sessions = ctx.hub.sessions
    again: list[int] = []
    for start in range(0, len(pks), CHUNK):
        async with ctx.session() as db:
            rows = await db.execute(
                select(_DEVICES.c.pk, _DEVICES.c.id, _DEVICES.c.desired_generation).where(
                    among(db, _DEVICES.c.pk, pks[start : start + CHUNK])
                )
            )
            for pk, device_id, generation in rows.all():
                session = sessions.get(device_id)
                if session is None or session.sent_generation < generation:
                    again.append(pk)
    return await push(ctx, again) if again else 0


async def device_changed(ctx: ServerContext, db: AsyncSession, device_pk: int) -> None:
    """The device's name, labels or metadata changed: its jobs' context
    (``EDGEFLEET_CONTEXT_URL``) travels in the desired state, so send a new
    generation (revisions are unchanged: nothing restarts)."""
    await bump(db, [device_pk])
    await db.commit()
    await push(ctx, [device_pk])


async def for_device(ctx: ServerContext, db: AsyncSession, device_pk: int) -> DesiredState:
    states = await desired_for(db, [device_pk], ctx.registry_auth, ctx.workload_config)
    return states[device_pk][1] if device_pk in states else DesiredState(generation=0)


async def resend_project(ctx: ServerContext, db: AsyncSession, project_pk: int) -> None:
    """Desired state again to every device that runs one of the project's jobs
    (its registry logins, secrets or variables changed)."""
    device_pks = set(
        await db.scalars(
            select(JobDevice.device_pk)
            .join(Job, Job.pk == JobDevice.job_pk)
            .where(
                Job.project_pk == project_pk,
                Job.state.not_in(INACTIVE),
                JobDevice.assigned.is_(True),
                JobDevice.eligible.is_(True),
            )
        )
    )
    if device_pks:
        await bump(db, device_pks)
        await db.commit()
        await push(ctx, device_pks)
