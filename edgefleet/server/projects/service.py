"""Projects and their members."""

from __future__ import annotations

from typing import TypeVarTuple

from sqlalchemy import Select, SQLColumnExpression, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission, Role
from edgefleet.server.auth.tables import User
from edgefleet.server.db.base import new_id
from edgefleet.server.errors import Conflict, Forbidden, NotFound
from edgefleet.server.events import audit
from edgefleet.server.pagination import MAX_LIMIT, Page, PageParams, keyset_page
from edgefleet.server.projects.schemas import Member, ProjectOut
from edgefleet.server.projects.tables import Membership, Project

Rows = TypeVarTuple("Rows")


async def find(db: AsyncSession, caller: Caller, ref: str, *, field: str = "project") -> Project:
    """A project by id or name, or 404 if absent or not visible to the caller."""
    project = await db.scalar(select(Project).where((Project.id == ref) | (Project.name == ref)))
    if project is None or not caller.can(project.pk, Permission.READ):
        raise NotFound(f"project {ref!r} not found", field=field)
    return project


async def names(db: AsyncSession, pks: set[int]) -> dict[int, Project]:
    if not pks:
        return {}
    rows = await db.scalars(select(Project).where(Project.pk.in_(pks)))
    return {p.pk: p for p in rows}


def in_visible(
    query: Select[*Rows], project_pk: SQLColumnExpression[int], caller: Caller
) -> Select[*Rows]:
    """``query`` kept to rows of the projects the caller belongs to (administrators:
    every project); ``project_pk`` is the rows' project column."""
    visible = caller.visible_projects()
    return query if visible is None else query.where(project_pk.in_(visible))


async def listing(db: AsyncSession, caller: Caller, page: PageParams) -> Page[Project]:
    """The projects the caller belongs to (administrators: all), oldest first."""
    return await keyset_page(db, in_visible(select(Project), Project.pk, caller), Project.pk, page)


async def visible(db: AsyncSession, caller: Caller) -> list[Project]:
    """The first thousand of :func:`listing` (the portal's project pickers)."""
    return (await listing(db, caller, PageParams(limit=MAX_LIMIT, after=0))).items


async def project_out(db: AsyncSession, caller: Caller, project: Project) -> ProjectOut:
    """The project with its members, and the caller's role in it."""
    listed = [
        Member(user=name, user_id=uid, role=Role(role))
        for uid, name, role in await members(db, project)
    ]
    return ProjectOut(
        id=project.id,
        name=project.name,
        description=project.description,
        created_at=project.created_at,
        members=listed,
        role=caller.roles.get(project.pk) or (Role.OWNER if caller.is_admin else None),
    )


async def create(db: AsyncSession, caller: Caller, name: str, description: str) -> Project:
    if not caller.is_admin:
        raise Forbidden("only administrators may create projects")
    if await db.scalar(select(Project.pk).where(Project.name == name)) is not None:
        raise Conflict(f"project {name!r} already exists", field="name")
    project = Project(id=new_id("p"), name=name, description=description)
    db.add(project)
    await db.flush()
    db.add(Membership(project_pk=project.pk, user_pk=caller.user_pk, role=Role.OWNER.value))
    what = f"{caller.name} created project {name}"
    audit.record(db, "project.created", project.pk, what, actor=caller.name)
    await db.commit()
    return project


async def delete(db: AsyncSession, caller: Caller, project: Project) -> None:
    caller.require(project.pk, Permission.MANAGE_MEMBERS, f"project {project.name!r}")
    from edgefleet.server.devices.tables import Device

    devices = await db.scalar(select(func.count()).where(Device.project_pk == project.pk))
    if devices:
        raise Conflict(f"project {project.name!r} still has {devices} device(s); remove them first")
    await db.delete(project)
    what = f"{caller.name} deleted project {project.name}"
    audit.record(db, "project.deleted", project.pk, what, actor=caller.name)
    await db.commit()


async def members(db: AsyncSession, project: Project) -> list[tuple[str, str, str]]:
    rows = await db.execute(
        select(User.id, User.name, Membership.role)
        .join(Membership, Membership.user_pk == User.pk)
        .where(Membership.project_pk == project.pk)
        .order_by(User.name)
    )
    return [(uid, name, role) for uid, name, role in rows.all()]


async def set_member(
    db: AsyncSession, caller: Caller, project: Project, user: User, role: Role
) -> None:
    caller.require(project.pk, Permission.MANAGE_MEMBERS, f"project {project.name!r}")
    membership = await db.scalar(
        select(Membership).where(Membership.project_pk == project.pk, Membership.user_pk == user.pk)
    )
    before = membership.role if membership is not None else None
    if membership is None:
        db.add(Membership(project_pk=project.pk, user_pk=user.pk, role=role.value))
    else:
        if membership.role == Role.OWNER.value and role != Role.OWNER:
            await _keep_an_owner(db, project, user)
        membership.role = role.value
    if before != role.value:
        kind, what = ("member.added", "added") if before is None else ("member.changed", "made")
        message = f"{caller.name} {what} {user.name} {role.value} of {project.name}"
        data = {"user": user.name, "role": role.value, "previous": before}
        audit.record(db, kind, project.pk, message, actor=caller.name, data=data)
    await db.commit()


async def remove_member(db: AsyncSession, caller: Caller, project: Project, user: User) -> None:
    caller.require(project.pk, Permission.MANAGE_MEMBERS, f"project {project.name!r}")
    membership = await db.scalar(
        select(Membership).where(Membership.project_pk == project.pk, Membership.user_pk == user.pk)
    )
    if membership is None:
        raise NotFound(f"user {user.name!r} is not a member of {project.name!r}")
    if membership.role == Role.OWNER.value:
        await _keep_an_owner(db, project, user)
    await db.delete(membership)
    message = f"{caller.name} removed {user.name} ({membership.role}) from {project.name}"
    data = {"user": user.name, "previous": membership.role}
    audit.record(db, "member.removed", project.pk, message, actor=caller.name, data=data)
    await db.commit()


async def _keep_an_owner(db: AsyncSession, project: Project, leaving: User) -> None:
    owners = await db.scalar(
        select(func.count()).where(
            Membership.project_pk == project.pk,
            Membership.role == Role.OWNER.value,
            Membership.user_pk != leaving.pk,
        )
    )
    if not owners:
        raise Forbidden(f"project {project.name!r} must keep at least one owner")
