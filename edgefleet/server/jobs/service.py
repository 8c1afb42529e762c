"""Jobs: create, upgrade, cancel, delete, and their views."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server import redact
from edgefleet.server.applications import service as applications
from edgefleet.server.applications.tables import Application, AppVersion
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import new_id
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import Conflict, Invalid, NotFound
from edgefleet.server.jobs import assign as assignment
from edgefleet.server.jobs import desired, devices
from edgefleet.server.jobs.schemas import JobIn, JobOut, JobPatch
from edgefleet.server.jobs.status import refresh_jobs
from edgefleet.server.jobs.tables import Job, JobDevice
from edgefleet.server.loans import service as loans
from edgefleet.server.pagination import Page, PageParams, keyset_page
from edgefleet.server.projects import service as projects
from edgefleet.server.projects.tables import Project
from edgefleet.server.reservations import links as reserved
from edgefleet.server.rollouts import service as rollouts
from edgefleet.server.rollouts.tables import JobRollout
from edgefleet.server.schedules import plan as schedule_plan
from edgefleet.server.schedules import service as schedules
from edgefleet.server.schedules.tables import JobSchedule
from edgefleet.server.secrets import service as project_secrets
from edgefleet.server.volumes import service as project_volumes

TERMINAL = ("cancelled", "expired")


async def find(db: AsyncSession, caller: Caller, ref: str) -> Job:
    job = await db.scalar(select(Job).where(Job.id == ref))
    if job is None or not caller.can(job.project_pk, Permission.READ):
        raise NotFound(f"job {ref!r} not found")
    return job


async def find_shown(db: AsyncSession, caller: Caller, ref: str) -> tuple[Job, Any]:
    """The job and what its view shows beside it (:func:`_about`), in the
    statement that finds it: ``GET /jobs/{id}`` is what a rollout display
    polls while its fan-out lands."""
    row = (await db.execute(_about(Job.id == ref))).first()
    if row is None or not caller.can(row.Job.project_pk, Permission.READ):
        raise NotFound(f"job {ref!r} not found")
    return row.Job, row


async def _resolve_devices(db: AsyncSession, project: Project, refs: list[str]) -> list[str]:
    rows = await db.execute(
        select(Device.id, Device.name).where(
            # its own devices, and those lent to it (edgefleet.server.loans)
            (Device.project_pk == project.pk) | loans.guest_clause([project.pk]),
            (Device.id.in_(refs)) | (Device.name.in_(refs)),
        )
    )
    by_ref: dict[str, str] = {}
    for device_id, name in rows.all():
        by_ref[device_id] = device_id
        by_ref.setdefault(name, device_id)
    missing = [r for r in refs if r not in by_ref]
    if missing:
        raise Invalid(
            f"devices: no device {', '.join(repr(m) for m in missing)} in project {project.name}",
            field="devices",
        )
    return list(dict.fromkeys(by_ref[r] for r in refs))


async def apply(
    ctx: ServerContext,
    db: AsyncSession,
    job: Job,
    *,
    upgraded: bool = False,
    planned: assignment.Plan | None = None,
) -> None:
    """Assign, bump, commit, push, refresh: the one path every change takes.
    ``planned``: the assignment already decided (by :func:`create`, before the
    job's INSERT took the write lock)."""
    if planned is None:
        version = await db.scalar(select(AppVersion.version).where(AppVersion.pk == job.version_pk))
        changed = await assignment.assign(db, job, version or "", upgraded=upgraded)
    else:
        changed = await assignment.write(db, job, planned)
    await desired.bump(db, changed)
    await db.commit()
    await desired.push(ctx, changed)
    await refresh_jobs(ctx, db, [job])


async def create(ctx: ServerContext, db: AsyncSession, caller: Caller, body: JobIn) -> Job:
    project_pk = None
    if body.project:
        project_pk = (await projects.find(db, caller, body.project)).pk
    app = await applications.find(db, caller, body.application, project_pk)
    caller.require(app.project_pk, Permission.MANAGE_APPS, f"application {app.name!r}")
    project = (await projects.names(db, {app.project_pk}))[app.project_pk]
    if body.version is None:
        versions = await applications.versions(db, app)
        version = versions[-1]
    else:
        version = await applications.find_version(db, app, body.version)
    spec = await applications.resolve(ctx.limits, version, body.environment)
    if body.schedule is not None:
        schedules.check(body.schedule, spec, min_period=ctx.settings.schedule_min_period)
    await project_secrets.check_refs(db, app.project_pk, spec)
    await project_volumes.bind(db, app.project_pk, spec)  # storage that outlives a job (issue 21)
    targets = await _resolve_devices(db, project, body.devices) if body.devices else None
    reservation = (
        await reserved.for_job(db, app.project_pk, body.reservation) if body.reservation else None
    )
    if reservation is not None and targets is None and body.selector is None:
        targets = await reserved.device_ids(db, reservation)
    job = Job(
        id=new_id("j"),
        project_pk=app.project_pk,
        application_pk=app.pk,
        version_pk=version.pk,
        name=body.name,
        target_devices=targets,
        selector=body.selector if isinstance(body.selector, str) else None,
        environment=body.environment,
        resolved=spec.model_dump(mode="json"),
        start=body.start,
        end=body.end,
        state="pending",
        created_by=caller.name,
    )
    # Every read of the assignment before the job's INSERT: on SQLite that
    # INSERT takes the write lock until apply's commit (issue 16: a job to
    # 2,000 devices held it for seconds while the reads went round the loop).
    planned = await assignment.plan(db, job, version.version, reservation=reservation)
    db.add(job)
    await db.flush()
    if reservation is not None:
        reserved.attach(db, job.pk, reservation)
    if body.rollout is not None:
        await rollouts.configure(db, job, body.rollout)
    if body.schedule is not None:
        schedules.configure(db, job, body.schedule)
    ctx.events.record(
        "job.created",
        job.project_pk,
        f"job {job.id}: {app.name} {version.version} created by {caller.name}",
        job_id=job.id,
        actor=caller.name,
    )
    await apply(ctx, db, job, planned=planned)
    return job


async def patch(
    ctx: ServerContext, db: AsyncSession, caller: Caller, job: Job, body: JobPatch
) -> Job:
    caller.require(job.project_pk, Permission.MANAGE_APPS, f"job {job.id!r}")
    if job.state in TERMINAL:
        raise Conflict(f"job {job.id} is {job.state}; create a new job instead")
    app = await db.scalar(select(Application).where(Application.pk == job.application_pk))
    assert app is not None
    version = await db.scalar(select(AppVersion).where(AppVersion.pk == job.version_pk))
    assert version is not None
    if body.version is not None:
        version = await applications.find_version(db, app, body.version)
    environment = job.environment
    if body.environment is not None:
        environment = redact.keep_masked(body.environment, job.environment)
    spec = await applications.resolve(ctx.limits, version, environment)
    await project_secrets.check_refs(db, job.project_pk, spec)
    await project_volumes.bind(db, job.project_pk, spec)  # storage that outlives a job (issue 21)
    periodic = await schedules.schedule_of(db, job)
    if body.schedule is not None and periodic is None:
        raise Invalid("schedule: this job is not periodic; create a new job", field="schedule")
    wanted = body.schedule or periodic
    if wanted is not None:  # a new version or environment must still fit the schedule
        schedules.check(wanted, spec, min_period=ctx.settings.schedule_min_period)
    upgraded = version.pk != job.version_pk or environment != job.environment
    previous = (job.version_pk, job.resolved)
    job.version_pk = version.pk
    job.environment = environment
    job.resolved = spec.model_dump(mode="json")
    if body.end is not None:
        job.end = body.end
    if upgraded:
        ctx.events.record(
            "job.upgraded",
            job.project_pk,
            f"job {job.id} rolling to {app.name} {version.version} ({caller.name})",
            job_id=job.id,
            actor=caller.name,
        )
        if job.state in ("running", "completed", "failed"):
            job.state = "deploying"
    if body.rollout is not None:
        await rollouts.configure(db, job, body.rollout)
    if upgraded:
        old = await db.scalar(select(AppVersion.version).where(AppVersion.pk == previous[0]))
        await rollouts.begin(
            ctx,
            db,
            job,
            from_version_pk=previous[0],
            from_version=old or "",
            from_resolved=previous[1],
            to_version=version.version,
        )
    if body.schedule is not None:
        await schedules.replace(db, job, body.schedule)
    # New rollout settings (an update-lock deadline) and a new schedule travel
    # with each assignment.
    await apply(
        ctx, db, job, upgraded=upgraded or body.rollout is not None or body.schedule is not None
    )
    return job


async def cancel(ctx: ServerContext, db: AsyncSession, caller: Caller, job: Job) -> Job:
    caller.require(job.project_pk, Permission.MANAGE_APPS, f"job {job.id!r}")
    if job.state not in TERMINAL:
        job.state = "cancelled"
        job.error = None
        ctx.events.record(
            "job.cancelled",
            job.project_pk,
            f"job {job.id} cancelled by {caller.name}",
            job_id=job.id,
            actor=caller.name,
        )
        await apply(ctx, db, job)
    return job


async def expire(ctx: ServerContext, db: AsyncSession, job: Job) -> None:
    job.state = "expired"
    ctx.events.record("job.expired", job.project_pk, f"job {job.id} reached its end", job_id=job.id)
    await apply(ctx, db, job)


async def delete(ctx: ServerContext, db: AsyncSession, caller: Caller, job: Job) -> None:
    await cancel(ctx, db, caller, job)
    await db.delete(job)
    await db.commit()


async def output(
    db: AsyncSession, job: Job, caller: Caller, *, with_devices: bool = True
) -> JobOut:
    """The job as ``caller`` may see it (a model, for callers that want one)."""
    body = await output_json(db, job, caller, with_devices=with_devices)
    return JobOut.model_validate(json.loads(body))


def _about(which: ColumnElement[bool]) -> Any:
    """Everything the job's view shows beside its devices, in one statement:
    at 10,000 devices each statement of a request waits a turn of a busy
    event loop (issue 16), so the view reads what it can at once."""
    return (
        select(
            Job,
            Application.name.label("application"),
            Application.id.label("application_id"),
            AppVersion.version.label("version"),
            Project.name.label("project"),
            Project.id.label("project_id"),
            reserved.id_of_job(Job.pk).label("reservation"),
            JobSchedule,
            JobRollout,
        )
        .select_from(Job)
        .join(Application, Application.pk == Job.application_pk)
        .join(Project, Project.pk == Job.project_pk)
        .outerjoin(AppVersion, AppVersion.pk == Job.version_pk)
        .outerjoin(JobSchedule, JobSchedule.job_pk == Job.pk)
        .outerjoin(JobRollout, JobRollout.job_pk == Job.pk)
        .where(which)
    )


async def output_json(
    db: AsyncSession, job: Job, caller: Caller, *, with_devices: bool = True, about: Any = None
) -> bytes:
    """The job as JSON, built for size: a job on 10,000 devices is 10,000 rows,
    so they are read as plain columns and written straight to JSON (their
    ``services`` are stored already in the API's shape), and the counts come
    from a GROUP BY rather than from the rows. Environment values are masked
    for callers below operator in the job's project (:mod:`..redact`)."""
    if about is None:  # not read with the job (:func:`find_shown`)
        about = (await db.execute(_about(Job.pk == job.pk))).one()
    grouped = await db.execute(
        select(JobDevice.state, func.count())
        .where(
            JobDevice.job_pk == job.pk,
            or_(JobDevice.assigned.is_(True), JobDevice.state != "removed"),
        )
        .group_by(JobDevice.state)
    )
    head = JobOut(
        id=job.id,
        name=job.name,
        application=about.application,
        application_id=about.application_id,
        version=about.version or "",
        project=about.project,
        project_id=about.project_id,
        state=job.state,
        error=job.error,
        targets=job.target_devices,
        selector=job.selector,
        environment=job.environment
        if redact.sees_secrets(caller, job.project_pk)
        else redact.masked(job.environment),
        start=job.start,
        end=job.end,
        reservation=about.reservation,
        created_at=job.created_at,
        updated_at=job.updated_at,
        created_by=job.created_by,
        services=sorted((job.resolved or {}).get("services", {})),
        counts={state: int(n) for state, n in grouped.all()},
        devices=[],
    ).model_dump(mode="json")
    head["device_counts"] = head["counts"]
    staged = await rollouts.view(db, job, about.JobRollout)
    head["rollout"] = staged.model_dump(mode="json") if staged is not None else None
    periodic = schedule_plan.as_schedule(about.JobSchedule) if about.JobSchedule else None
    head["schedule"] = schedules.view(periodic).model_dump(mode="json") if periodic else None
    if with_devices:
        first = await devices.page(
            db, job, PageParams(limit=devices.FIRST_PAGE, after=0), rollout=about.JobRollout
        )
        head["devices"] = first.items
        head["devices_next"] = first.next
        if periodic is not None:
            await schedules.decorate(db, job, periodic, head["devices"])
    return json.dumps(head, separators=(",", ":")).encode()


async def listing(
    db: AsyncSession,
    caller: Caller,
    page: PageParams,
    *,
    project: str | None = None,
    application: str | None = None,
    states: list[str] | None = None,
) -> Page[Job]:
    """The jobs of the caller's projects, oldest first; ``project`` and
    ``application`` are ids or names, ``application`` within ``project`` if given."""
    query = filters(select(Job), caller)
    project_pk = None
    if project:
        project_pk = (await projects.find(db, caller, project)).pk
        query = query.where(Job.project_pk == project_pk)
    if application:
        app = await applications.find(db, caller, application, project_pk)
        query = query.where(Job.application_pk == app.pk)
    if states:
        query = query.where(Job.state.in_(states))
    return await keyset_page(db, query, Job.pk, page)


async def device_page(
    db: AsyncSession, job: Job, page: PageParams, states: list[str] | None = None
) -> Page[dict[str, Any]]:
    """``GET /jobs/{job}/devices``: a page of the job's devices; a periodic job's
    with each device's last run and next fire time."""
    found = await devices.page(db, job, page, states, rollout=await rollouts.get(db, job))
    periodic = await schedules.schedule_of(db, job)
    if periodic is not None:
        await schedules.decorate(db, job, periodic, found.items)
    return found


def filters(query: Any, caller: Caller) -> Any:
    return projects.in_visible(query, Job.project_pk, caller)


async def count_states(db: AsyncSession, caller: Caller) -> dict[str, int]:
    """Jobs the caller sees, by state (one GROUP BY)."""
    query = filters(select(Job.state, func.count()).group_by(Job.state), caller)
    return {state: int(count) for state, count in (await db.execute(query)).all()}


async def for_device(db: AsyncSession, device_pk: int) -> list[tuple[Job, JobDevice, str]]:
    """The jobs assigned to one device, newest first: (job, its row there, application name).
    The caller has already been allowed to see the device, hence its project's jobs."""
    rows = await db.execute(
        select(Job, JobDevice, Application.name)
        .join(JobDevice, JobDevice.job_pk == Job.pk)
        .join(Application, Application.pk == Job.application_pk)
        .where(JobDevice.device_pk == device_pk)
        .order_by(Job.pk.desc())
    )
    return [(job, row, name) for job, row, name in rows.all()]
