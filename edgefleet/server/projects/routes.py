from __future__ import annotations

from fastapi import APIRouter

from edgefleet.server.auth import service as users
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Role
from edgefleet.server.deps import CallerDep, Db, Paging
from edgefleet.server.errors import Forbidden
from edgefleet.server.pagination import Page, next_cursor
from edgefleet.server.projects import service
from edgefleet.server.projects.schemas import Member, MemberIn, ProjectIn, ProjectOut, RoleIn
from edgefleet.server.projects.tables import Project

router = APIRouter(tags=["projects"])


async def _out(db: Db, caller: Caller, project: Project) -> ProjectOut:
    members = [
        Member(user=name, user_id=uid, role=Role(role))
        for uid, name, role in await service.members(db, project)
    ]
    return ProjectOut(
        id=project.id,
        name=project.name,
        description=project.description,
        created_at=project.created_at,
        members=members,
        role=caller.roles.get(project.pk) or (Role.OWNER if caller.is_admin else None),
    )


@router.get("/projects", response_model=Page[ProjectOut])
async def list_projects(caller: CallerDep, db: Db, page: Paging) -> Page[ProjectOut]:
    rows = await service.list_visible(db, caller, page.after, page.limit)
    items = [await _out(db, caller, p) for p in rows[: page.limit]]
    return Page(items=items, next=next_cursor([p.pk for p in rows], page.limit))


@router.post("/projects", status_code=201, response_model=ProjectOut)
async def create_project(body: ProjectIn, caller: CallerDep, db: Db) -> ProjectOut:
    if not caller.is_admin:
        raise Forbidden("only administrators may create projects")
    project = await service.create(db, caller, body.name, body.description)
    return await _out(db, caller, project)


@router.get("/projects/{project}", response_model=ProjectOut)
async def show_project(project: str, caller: CallerDep, db: Db) -> ProjectOut:
    return await _out(db, caller, await service.find(db, caller, project))


@router.delete("/projects/{project}", status_code=204)
async def delete_project(project: str, caller: CallerDep, db: Db) -> None:
    await service.delete(db, caller, await service.find(db, caller, project))


@router.get("/projects/{project}/members", response_model=Page[Member])
async def list_members(project: str, caller: CallerDep, db: Db) -> Page[Member]:
    found = await service.find(db, caller, project)
    return Page(items=(await _out(db, caller, found)).members, next=None)


@router.post("/projects/{project}/members", status_code=201, response_model=ProjectOut)
async def add_member(project: str, body: MemberIn, caller: CallerDep, db: Db) -> ProjectOut:
    found = await service.find(db, caller, project)
    user = await users.find_user(db, body.user)
    await service.set_member(db, caller, found, user, body.role)
    return await _out(db, caller, found)


@router.put("/projects/{project}/members/{user}", response_model=ProjectOut)
async def set_role(project: str, user: str, body: RoleIn, caller: CallerDep, db: Db) -> ProjectOut:
    found = await service.find(db, caller, project)
    await service.set_member(db, caller, found, await users.find_user(db, user), body.role)
    return await _out(db, caller, found)


@router.delete("/projects/{project}/members/{user}", status_code=204)
async def remove_member(project: str, user: str, caller: CallerDep, db: Db) -> None:
    found = await service.find(db, caller, project)
    await service.remove_member(db, caller, found, await users.find_user(db, user))
