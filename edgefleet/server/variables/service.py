"""Variables: set, list, delete, per project (optionally per label selector)
and per device. Members read them; operators, developers and owners write.
Every change re-sends desired state to the devices it may reach, where
:mod:`.render` works out what each one sees (:mod:`.precedence`). A job
with a ``rollout`` block gets a change that alters its resolved spec batch by
batch, the devices it holds back keeping the previous value
(:mod:`edgefleet.server.rollouts.config`)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import Conflict, Invalid, NotFound
from edgefleet.server.pagination import Page, PageParams, keyset_page
from edgefleet.server.projects.tables import Project
from edgefleet.server.rollouts import config as staged
from edgefleet.server.rollouts import inputs
from edgefleet.server.variables import render
from edgefleet.server.variables.schemas import VariableIn
from edgefleet.server.variables.tables import DeviceVariable, ProjectVariable


def _check_value(ctx: ServerContext, value: str) -> None:
    limit = ctx.settings.variable_value_max_bytes
    if len(value.encode()) > limit:
        raise Invalid(
            f"value: larger than {limit} bytes (--variable-value-max-bytes)", field="value"
        )


def _room(ctx: ServerContext, count: int, where: str) -> None:
    if count >= ctx.settings.variables_max_per_scope:
        raise Conflict(
            f"{where} already has {count} variables (--variables-max-per-scope); delete some",
            field="name",
        )


async def put_project(
    ctx: ServerContext,
    db: AsyncSession,
    caller: Caller,
    project: Project,
    name: str,
    body: VariableIn,
) -> tuple[ProjectVariable, bool]:
    """Set a project (or selector-scoped) variable; True if it is new."""
    caller.require(project.pk, Permission.MANAGE_VARIABLES, f"project {project.name!r}")
    _check_value(ctx, body.value)
    selector = str(body.selector or "")
    row = await db.scalar(
        select(ProjectVariable).where(
            ProjectVariable.project_pk == project.pk,
            ProjectVariable.name == name,
            ProjectVariable.selector == selector,
        )
    )
    created = row is None
    where = f" for {selector}" if selector else ""
    snapshot = await staged.before(ctx, db, project.pk)
    held = inputs.project_variable(
        name, selector, None if row is None else row.value, f"variable {name}{where} set"
    )
    if row is None:
        count = await db.scalar(
            select(func.count()).where(ProjectVariable.project_pk == project.pk)
        )
        _room(ctx, int(count or 0), f"project {project.name}")
        row = ProjectVariable(id=new_id("v"), project_pk=project.pk, name=name, selector=selector)
        db.add(row)
    row.value, row.updated_by, row.updated_at = body.value, caller.name, utcnow()
    await db.commit()
    ctx.events.record(
        "variable.set",
        project.pk,
        f"variable {name}{where} set by {caller.name}",
        actor=caller.name,
    )
    await staged.after(ctx, db, snapshot, held)
    await render.resend_project(ctx, db, project.pk)
    return row, created


async def project_rows(
    db: AsyncSession, caller: Caller, project: Project, page: PageParams
) -> Page[ProjectVariable]:
    caller.require(project.pk, Permission.READ, f"project {project.name!r}")
    query = select(ProjectVariable).where(ProjectVariable.project_pk == project.pk)
    return await keyset_page(db, query, ProjectVariable.pk, page)


async def find_project(
    db: AsyncSession, caller: Caller, project: Project, name: str, selector: str
) -> ProjectVariable:
    caller.require(project.pk, Permission.READ, f"project {project.name!r}")
    row = await db.scalar(
        select(ProjectVariable).where(
            ProjectVariable.project_pk == project.pk,
            ProjectVariable.name == name,
            ProjectVariable.selector == selector,
        )
    )
    if row is None:
        where = f" for selector {selector!r}" if selector else ""
        raise NotFound(f"project {project.name} has no variable {name!r}{where}")
    return row


async def delete_project(
    ctx: ServerContext,
    db: AsyncSession,
    caller: Caller,
    project: Project,
    name: str,
    selector: str,
) -> None:
    caller.require(project.pk, Permission.MANAGE_VARIABLES, f"project {project.name!r}")
    row = await find_project(db, caller, project, name, selector)
    where = f" for {selector}" if selector else ""
    snapshot = await staged.before(ctx, db, project.pk)
    held = inputs.project_variable(name, selector, row.value, f"variable {name}{where} deleted")
    await db.delete(row)
    await db.commit()
    ctx.events.record(
        "variable.deleted",
        project.pk,
        f"variable {row.name} deleted by {caller.name}",
        actor=caller.name,
    )
    await staged.after(ctx, db, snapshot, held)
    await render.resend_project(ctx, db, project.pk)


async def put_device(
    ctx: ServerContext,
    db: AsyncSession,
    caller: Caller,
    device: Device,
    name: str,
    body: VariableIn,
) -> tuple[DeviceVariable, bool]:
    caller.require(device.project_pk, Permission.MANAGE_VARIABLES, f"device {device.name!r}")
    if body.selector:
        raise Invalid("selector: a device variable applies to its device only", field="selector")
    _check_value(ctx, body.value)
    row = await db.scalar(
        select(DeviceVariable).where(
            DeviceVariable.device_pk == device.pk, DeviceVariable.name == name
        )
    )
    created = row is None
    snapshot = await staged.before(ctx, db, device.project_pk, device.pk)
    held = inputs.device_variable(
        device.id,
        name,
        None if row is None else row.value,
        f"variable {name} of device {device.name} set",
    )
    if row is None:
        count = await db.scalar(select(func.count()).where(DeviceVariable.device_pk == device.pk))
        _room(ctx, int(count or 0), f"device {device.name}")
        row = DeviceVariable(id=new_id("v"), device_pk=device.pk, name=name)
        db.add(row)
    row.value, row.updated_by, row.updated_at = body.value, caller.name, utcnow()
    await db.commit()
    ctx.events.record(
        "variable.set",
        device.project_pk,
        f"variable {name} of device {device.name} set by {caller.name}",
        actor=caller.name,
        device_id=device.id,
    )
    await staged.after(ctx, db, snapshot, held)
    await render.resend_device(ctx, db, device.pk)
    return row, created


async def device_rows(db: AsyncSession, device: Device, page: PageParams) -> Page[DeviceVariable]:
    query = select(DeviceVariable).where(DeviceVariable.device_pk == device.pk)
    return await keyset_page(db, query, DeviceVariable.pk, page)


async def find_device(db: AsyncSession, device: Device, name: str) -> DeviceVariable:
    row = await db.scalar(
        select(DeviceVariable).where(
            DeviceVariable.device_pk == device.pk, DeviceVariable.name == name
        )
    )
    if row is None:
        raise NotFound(f"device {device.name} has no variable {name!r}")
    return row


async def delete_device(
    ctx: ServerContext, db: AsyncSession, caller: Caller, device: Device, name: str
) -> None:
    caller.require(device.project_pk, Permission.MANAGE_VARIABLES, f"device {device.name!r}")
    row = await find_device(db, device, name)
    snapshot = await staged.before(ctx, db, device.project_pk, device.pk)
    held = inputs.device_variable(
        device.id, name, row.value, f"variable {name} of device {device.name} deleted"
    )
    await db.delete(row)
    await db.commit()
    await staged.after(ctx, db, snapshot, held)
    ctx.events.record(
        "variable.deleted",
        device.project_pk,
        f"variable {row.name} of device {device.name} deleted by {caller.name}",
        actor=caller.name,
        device_id=device.id,
    )
    await render.resend_device(ctx, db, device.pk)
