"""Personal instances: launch, list, share, stop.

An instance is an ordinary job (the job machinery deploys, reports and
removes it) plus an :class:`Instance` row naming the user who owns it. Only
the owner, the users they share it with, and admins see it here; only the
owner and those users get through the proxy (:mod:`access`). Someone outside
the application's project gets 404 for all of it, as everywhere.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.labels import LabelError, Selector, parse_selector
from edgefleet.server.applications import service as applications
from edgefleet.server.applications.tables import Application
from edgefleet.server.auth import freshness
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.auth.tables import User
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.errors import Conflict, Invalid, NotFound
from edgefleet.server.instances.schemas import InstanceIn, LaunchableIn
from edgefleet.server.instances.tables import Instance, InstanceShare, Launchable
from edgefleet.server.jobs import service as jobs
from edgefleet.server.jobs.schemas import JobIn
from edgefleet.server.jobs.tables import Job
from edgefleet.server.pagination import Page, PageParams, keyset_page
from edgefleet.server.projects import service as projects
from edgefleet.server.projects.tables import Membership

STOPPED = ("cancelled", "expired")


async def launchable_of(db: AsyncSession, app: Application) -> Launchable | None:
    return await db.scalar(select(Launchable).where(Launchable.application_pk == app.pk))


async def set_launchable(
    db: AsyncSession, caller: Caller, app: Application, body: LaunchableIn
) -> Launchable | None:
    """Mark (or unmark) an application launchable; developers and up."""
    caller.require(app.project_pk, Permission.MANAGE_APPS, f"application {app.name!r}")
    row = await launchable_of(db, app)
    if not body.launchable:
        if row is not None:
            await db.delete(row)
            await db.commit()
        return None
    if row is None:
        row = Launchable(application_pk=app.pk)
        db.add(row)
    row.idle_timeout = body.idle_timeout
    row.updated_by = caller.name
    row.updated_at = utcnow()
    await db.commit()
    return row


async def _pick_device(db: AsyncSession, project_pk: int, body: InstanceIn) -> list[str] | None:
    """The one device the instance runs on: the one named, else the first
    online device of the project matching the selector (any, without one)."""
    if body.device is not None:
        found = await db.scalar(
            select(Device.id).where(
                Device.project_pk == project_pk,
                (Device.id == body.device) | (Device.name == body.device),
            )
        )
        if found is None:
            raise Invalid(f"device: no device {body.device!r} in the project", field="device")
        return [found]
    selector: Selector | None = None
    if body.selector is not None:
        try:
            selector = (
                Selector.from_labels(body.selector)
                if isinstance(body.selector, dict)
                else parse_selector(body.selector)
            )
        except LabelError as exc:
            raise Invalid(f"selector: {exc}", field="selector") from exc
    rows = await db.execute(
        select(Device.id, Device.labels)
        .join(Presence, Presence.device_pk == Device.pk)
        .where(Device.project_pk == project_pk, Presence.expires_at > utcnow())
        .order_by(Device.pk)
    )
    for device_id, labels in rows.all():
        if selector is None or selector.matches(dict(labels or {})):
            return [device_id]
    if selector is not None:
        raise Invalid(f"selector: no online device matching {selector}", field="selector")
    raise Invalid("device: no device of the project is online to launch on", field="device")


async def launch(
    ctx: ServerContext, db: AsyncSession, caller: Caller, body: InstanceIn
) -> Instance:
    project_pk = (await projects.find(db, caller, body.project)).pk if body.project else None
    app = await applications.find(db, caller, body.app, project_pk)
    caller.require(app.project_pk, Permission.MANAGE_APPS, f"application {app.name!r}")
    marked = await launchable_of(db, app)
    if marked is None:
        raise Invalid(
            f"app: application {app.name!r} is not launchable; a developer marks it with "
            f"PUT /applications/{app.name}/launchable",
            field="app",
        )
    timeout = marked.idle_timeout
    devices = await _pick_device(db, app.project_pk, body)
    job = await jobs.create(
        ctx,
        db,
        caller,
        JobIn(
            application=app.id,
            version=body.version,
            devices=devices,
            name=f"instance of {app.name} for {caller.name}"[:128],
        ),
    )
    instance = Instance(
        id=new_id("i"),
        job_pk=job.pk,
        project_pk=job.project_pk,
        owner_pk=caller.user_pk,
        idle_timeout=timeout,
        last_access=utcnow(),
    )
    db.add(instance)
    await db.commit()
    ctx.events.record(
        "instance.launched",
        job.project_pk,
        f"instance {instance.id} of {app.name} launched by {caller.name} (job {job.id})",
        job_id=job.id,
        actor=caller.name,
    )
    return instance


async def find(db: AsyncSession, caller: Caller, ref: str) -> Instance:
    """An instance the caller owns or was shared, or any for an admin; 404 otherwise."""
    found = await db.scalar(select(Instance).where(Instance.id == ref))
    if found is None or not (caller.is_admin or await may_open(db, caller, found)):
        raise NotFound(f"instance {ref!r} not found")
    return found


async def may_open(db: AsyncSession, caller: Caller, instance: Instance) -> bool:
    """Owner, or a user it is shared with who is still a member of its project."""
    if caller.user_pk == instance.owner_pk:
        return instance.project_pk in caller.roles or caller.is_admin
    if instance.project_pk not in caller.roles:
        return False
    shared = await db.scalar(
        select(InstanceShare.pk).where(
            InstanceShare.instance_pk == instance.pk, InstanceShare.user_pk == caller.user_pk
        )
    )
    return shared is not None


async def visible(db: AsyncSession, caller: Caller, page: PageParams) -> Page[Instance]:
    """The caller's own instances and those shared with them, oldest first."""
    shared = select(InstanceShare.instance_pk).where(InstanceShare.user_pk == caller.user_pk)
    query = select(Instance).where((Instance.owner_pk == caller.user_pk) | Instance.pk.in_(shared))
    return await keyset_page(db, query, Instance.pk, page)


async def launchable_apps(db: AsyncSession, caller: Caller) -> list[tuple[Application, int]]:
    """Launchable applications the caller may launch (developer role and up), by
    name, each with its idle timeout."""
    rows = await db.execute(
        select(Application, Launchable.idle_timeout)
        .join(Launchable, Launchable.application_pk == Application.pk)
        .order_by(Application.name)
    )
    return [
        (app, timeout)
        for app, timeout in rows.all()
        if caller.can(app.project_pk, Permission.MANAGE_APPS)
    ]


def _require_owner(caller: Caller, instance: Instance, doing: str) -> None:
    if caller.user_pk != instance.owner_pk and not caller.is_admin:
        raise NotFound(f"instance {instance.id!r} not found: only its owner may {doing} it")


async def share(db: AsyncSession, caller: Caller, instance: Instance, user_ref: str) -> None:
    """Let a member of the instance's project open it (the owner only)."""
    _require_owner(caller, instance, "share")
    user = await db.scalar(select(User).where((User.id == user_ref) | (User.name == user_ref)))
    member = (
        None
        if user is None
        else await db.scalar(
            select(Membership.pk).where(
                Membership.project_pk == instance.project_pk, Membership.user_pk == user.pk
            )
        )
    )
    if user is None or member is None:
        raise Invalid(
            f"user: no user {user_ref!r} in this instance's project; "
            "an instance is shared only with members of its project",
            field="user",
        )
    if user.pk == instance.owner_pk:
        raise Invalid("user: the owner already has the instance", field="user")
    exists = await db.scalar(
        select(InstanceShare.pk).where(
            InstanceShare.instance_pk == instance.pk, InstanceShare.user_pk == user.pk
        )
    )
    if exists is None:
        db.add(InstanceShare(instance_pk=instance.pk, user_pk=user.pk))
        await db.commit()


async def unshare(db: AsyncSession, caller: Caller, instance: Instance, user_ref: str) -> None:
    _require_owner(caller, instance, "unshare")
    user = await db.scalar(select(User).where((User.id == user_ref) | (User.name == user_ref)))
    row = (
        None
        if user is None
        else await db.scalar(
            select(InstanceShare).where(
                InstanceShare.instance_pk == instance.pk, InstanceShare.user_pk == user.pk
            )
        )
    )
    if user is None or row is None:
        raise NotFound(f"instance {instance.id} is not shared with {user_ref!r}", field="user")
    await db.delete(row)
    # the proxy remembers admissions for a moment (proxy/grants.py): the commit
    # announces that this user's rights changed, so their next request is judged afresh
    freshness.mark(db, user.pk)
    await db.commit()


async def job_of(db: AsyncSession, instance: Instance) -> Job:
    job = await db.scalar(select(Job).where(Job.pk == instance.job_pk))
    assert job is not None  # the instance row goes with its job (ON DELETE CASCADE)
    return job


async def stop(
    ctx: ServerContext, db: AsyncSession, instance: Instance, *, reason: str, actor: str
) -> None:
    """Remove the instance's workload (its job becomes ``cancelled``); idempotent."""
    job = await job_of(db, instance)
    if job.state in STOPPED:
        return
    job.state = "cancelled"
    job.error = None
    instance.stopped_reason = reason
    # nobody reaches a stopped instance, not even through a remembered admission
    freshness.mark(db, instance.owner_pk)
    for user_pk in await db.scalars(
        select(InstanceShare.user_pk).where(InstanceShare.instance_pk == instance.pk)
    ):
        freshness.mark(db, user_pk)
    ctx.events.record(
        "instance.stopped",
        job.project_pk,
        f"instance {instance.id} stopped: {reason}",
        job_id=job.id,
        actor=actor,
    )
    await jobs.apply(ctx, db, job)


async def stop_by(ctx: ServerContext, db: AsyncSession, caller: Caller, instance: Instance) -> None:
    _require_owner(caller, instance, "stop")
    if (await job_of(db, instance)).state in STOPPED:
        raise Conflict(f"instance {instance.id} is already stopped")
    await stop(ctx, db, instance, reason=f"stopped by {caller.name}", actor=caller.name)
