from __future__ import annotations

import copy

from fastapi import APIRouter, Query

from edgefleet.labels import LabelError, parse_selector
from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.devices import service
from edgefleet.server.devices.schemas import DeviceOut, DevicePatch
from edgefleet.server.errors import Invalid
from edgefleet.server.jobs import desired
from edgefleet.server.pagination import Page, next_cursor
from edgefleet.server.projects import service as projects

router = APIRouter(tags=["devices"])


@router.get("/devices", response_model=Page[DeviceOut])
async def list_devices(
    caller: CallerDep,
    db: Db,
    page: Paging,
    selector: str | None = Query(None, description="label selector, e.g. site=chicago,tier!=test"),
    online: bool | None = Query(None, description="only online (true) or offline (false) devices"),
    project: str | None = Query(None, description="only this project's devices"),
) -> Page[DeviceOut]:
    try:
        parsed = parse_selector(selector) if selector else None
    except LabelError as exc:
        raise Invalid(str(exc), field="selector") from exc
    project_pk = (await projects.find(db, caller, project)).pk if project else None
    rows = await service.list_devices(
        db,
        caller,
        after=page.after,
        limit=page.limit,
        selector=parsed,
        online=online,
        project_pk=project_pk,
    )
    items = await service.outputs(db, rows[: page.limit], caller)
    return Page(items=items, next=next_cursor([d.pk for d, _ in rows], page.limit))


@router.get("/devices/{device}", response_model=DeviceOut)
async def show_device(device: str, caller: CallerDep, db: Db) -> DeviceOut:
    found = await service.find(db, caller, device)
    return (await service.outputs(db, [found], caller))[0]


@router.patch("/devices/{device}", response_model=DeviceOut)
async def patch_device(
    device: str, body: DevicePatch, caller: CallerDep, db: Db, ctx: Ctx
) -> DeviceOut:
    found, presence = await service.find(db, caller, device)
    before = dict(found.labels)
    described = (found.name, before, copy.deepcopy(found.meta))
    updated = await service.patch(db, caller, found, body)
    ctx.events.record(
        "device.updated",
        updated.project_pk,
        f"device {updated.name} updated by {caller.name}",
        device_id=updated.id,
        actor=caller.name,
        data=body.model_dump(exclude_none=True),
    )
    if updated.labels != before:
        await ctx.hub.fleet_changed(updated.project_pk)
    if (updated.name, updated.labels, updated.meta) != described:
        await desired.device_changed(ctx, db, updated.pk)
    return (await service.outputs(db, [(updated, presence)], caller))[0]


@router.delete("/devices/{device}", status_code=204)
async def delete_device(device: str, caller: CallerDep, db: Db, ctx: Ctx) -> None:
    found, _ = await service.find(db, caller, device)
    device_id, name, project_pk = found.id, found.name, found.project_pk
    await service.delete_device(db, caller, found)
    await ctx.hub.kick(
        device_id,
        f"device {name} ({device_id}) was deleted by {caller.name}; its credential is revoked",
    )
    ctx.events.record(
        "device.deleted",
        project_pk,
        f"device {name} deleted",
        device_id=device_id,
        actor=caller.name,
    )
    await ctx.hub.fleet_changed(project_pk)
