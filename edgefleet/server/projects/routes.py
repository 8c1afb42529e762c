"""HTTP: projects and their members. Rules, queries and commits are in :mod:`.service`."""

from __future__ import annotations

from fastapi import APIRouter

from edgefleet.server.auth import service as users
from edgefleet.server.deps import CallerDep, Db, Paging
from edgefleet.server.pagination import Page
from edgefleet.server.projects import service
from edgefleet.server.projects.schemas import Member, MemberIn, ProjectIn, ProjectOut, RoleIn

router = APIRouter(tags=["projects"])


@router.get("/projects", response_model=Page[ProjectOut])
async def list_projects(caller: CallerDep, db: Db, page: Paging) -> Page[ProjectOut]:
    found = await service.listing(db, caller, page)
    items = [await service.project_out(db, caller, p) for p in found.items]
    return Page(items=items, next=found.next)


@router.post("/projects", status_code=201, response_model=ProjectOut)
async def create_project(body: ProjectIn, caller: CallerDep, db: Db) -> ProjectOut:
    project = await service.create(db, caller, body.name, body.description)
    return await service.project_out(db, caller, project)


@router.get("/projects/{project}", response_model=ProjectOut)
async def show_project(project: str, caller: CallerDep, db: Db) -> ProjectOut:
    return await service.project_out(db, caller, await service.find(db, caller, project))


@router.delete("/projects/{project}", status_code=204)
async def delete_project(project: str, caller: CallerDep, db: Db) -> None:
    await service.delete(db, caller, await service.find(db, caller, project))


@router.get("/projects/{project}/members", response_model=Page[Member])
async def list_members(project: str, caller: CallerDep, db: Db) -> Page[Member]:
    found = await service.find(db, caller, project)
    return Page(items=(await service.project_out(db, caller, found)).members)


@router.post("/projects/{project}/members", status_code=201, response_model=ProjectOut)
async def add_member(project: str, body: MemberIn, caller: CallerDep, db: Db) -> ProjectOut:
    found = await service.find(db, caller, project)
    await service.set_member(db, caller, found, await users.find_user(db, body.user), body.role)
    return await service.project_out(db, caller, found)


@router.put("/projects/{project}/members/{user}", response_model=ProjectOut)
async def set_role(project: str, user: str, body: RoleIn, caller: CallerDep, db: Db) -> ProjectOut:
    found = await service.find(db, caller, project)
    await service.set_member(db, caller, found, await users.find_user(db, user), body.role)
    return await service.project_out(db, caller, found)


@router.delete("/projects/{project}/members/{user}", status_code=204)
async def remove_member(project: str, user: str, caller: CallerDep, db: Db) -> None:
    found = await service.find(db, caller, project)
    await service.remove_member(db, caller, found, await users.find_user(db, user))
