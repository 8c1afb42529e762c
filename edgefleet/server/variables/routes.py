"""``/projects/{project}/variables`` and ``/devices/{id}/variables``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from edgefleet.server.auth.roles import Permission
from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.devices import service as devices
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import Invalid, NotFound
from edgefleet.server.pagination import Page
from edgefleet.server.projects import service as projects
from edgefleet.server.projects.tables import Project
from edgefleet.server.variables import service
from edgefleet.server.variables.schemas import (
    VariableIn,
    VariableOut,
    canonical_selector,
    check_name,
)
from edgefleet.server.variables.tables import DeviceVariable, ProjectVariable

router = APIRouter(tags=["variables"])

SelectorQuery = Annotated[
    str, Query(description="the selector of a selector-scoped variable ('site=a')")
]


def _name(name: str) -> str:
    try:
        return check_name(name)
    except ValueError as exc:
        raise Invalid(f"name: {exc}", field="name") from exc


def _selector(text: str) -> str:
    try:
        return canonical_selector(text)
    except ValueError as exc:
        raise Invalid(f"selector: {exc}", field="selector") from exc


def _project_out(project: Project, row: ProjectVariable) -> VariableOut:
    return VariableOut(
        name=row.name,
        value=row.value,
        scope="selector" if row.selector else "project",
        selector=row.selector or None,
        project=project.name,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def _device_out(project: str, device: Device, row: DeviceVariable) -> VariableOut:
    return VariableOut(
        name=row.name,
        value=row.value,
        scope="device",
        project=project,
        device=device.id,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


@dataclass(frozen=True)
class Put:
    """What a ``PUT`` of a variable needs: it answers 201 when it created one."""

    caller: CallerDep
    db: Db
    ctx: Ctx
    response: Response

    def created(self, created: bool) -> None:
        if created:
            self.response.status_code = 201


async def _put(caller: CallerDep, db: Db, ctx: Ctx, response: Response) -> Put:
    return Put(caller, db, ctx, response)


PutDep = Annotated[Put, Depends(_put)]


@router.put("/projects/{project}/variables/{name}", response_model=VariableOut)
async def set_project_variable(
    project: str, name: str, body: VariableIn, put: PutDep
) -> VariableOut:
    """Set a variable for the whole project, or with ``selector`` for the project's
    devices whose labels match (201 when new, 200 when changed)."""
    found = await projects.find(put.db, put.caller, project)
    row, created = await service.put_project(put.ctx, put.db, put.caller, found, _name(name), body)
    put.created(created)
    return _project_out(found, row)


@router.get("/projects/{project}/variables", response_model=Page[VariableOut])
async def list_project_variables(
    project: str, caller: CallerDep, db: Db, page: Paging
) -> Page[VariableOut]:
    found = await projects.find(db, caller, project)
    listed = await service.project_rows(db, caller, found, page)
    return Page(items=[_project_out(found, r) for r in listed.items], next=listed.next)


@router.get("/projects/{project}/variables/{name}", response_model=VariableOut)
async def show_project_variable(
    project: str, name: str, caller: CallerDep, db: Db, selector: SelectorQuery = ""
) -> VariableOut:
    found = await projects.find(db, caller, project)
    return _project_out(
        found, await service.find_project(db, caller, found, name, _selector(selector))
    )


@router.delete("/projects/{project}/variables/{name}", status_code=204)
async def delete_project_variable(
    project: str, name: str, caller: CallerDep, db: Db, ctx: Ctx, selector: SelectorQuery = ""
) -> None:
    found = await projects.find(db, caller, project)
    await service.delete_project(ctx, db, caller, found, name, _selector(selector))


async def _device(db: Db, caller: CallerDep, ref: str) -> tuple[Device, str]:
    """A device of one of the caller's projects; a device only lent to them is
    not theirs to configure or read the configuration of (404, as elsewhere)."""
    device, _ = await devices.find(db, caller, ref)
    if not caller.can(device.project_pk, Permission.READ):
        raise NotFound(f"device {ref!r} not found")
    project = (await projects.names(db, {device.project_pk}))[device.project_pk]
    return device, project.name


@router.put("/devices/{device}/variables/{name}", response_model=VariableOut)
async def set_device_variable(device: str, name: str, body: VariableIn, put: PutDep) -> VariableOut:
    """Set a variable of one device: it wins over project and selector variables."""
    found, project = await _device(put.db, put.caller, device)
    row, created = await service.put_device(put.ctx, put.db, put.caller, found, _name(name), body)
    put.created(created)
    return _device_out(project, found, row)


@router.get("/devices/{device}/variables", response_model=Page[VariableOut])
async def list_device_variables(
    device: str, caller: CallerDep, db: Db, page: Paging
) -> Page[VariableOut]:
    found, project = await _device(db, caller, device)
    listed = await service.device_rows(db, found, page)
    return Page(items=[_device_out(project, found, r) for r in listed.items], next=listed.next)


@router.get("/devices/{device}/variables/{name}", response_model=VariableOut)
async def show_device_variable(device: str, name: str, caller: CallerDep, db: Db) -> VariableOut:
    found, project = await _device(db, caller, device)
    return _device_out(project, found, await service.find_device(db, found, name))


@router.delete("/devices/{device}/variables/{name}", status_code=204)
async def delete_device_variable(
    device: str, name: str, caller: CallerDep, db: Db, ctx: Ctx
) -> None:
    found, _ = await _device(db, caller, device)
    await service.delete_device(ctx, db, caller, found, name)
