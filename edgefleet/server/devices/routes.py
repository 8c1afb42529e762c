"""HTTP: devices as users see them. Rules, queries, commits and the events they
raise are in :mod:`.service`."""

from __future__ import annotations

from fastapi import APIRouter, Query

from edgefleet.labels import LabelError, parse_selector
from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.devices import service
from edgefleet.server.devices.schemas import DeviceOut, DevicePatch
from edgefleet.server.errors import Invalid
from edgefleet.server.pagination import Page
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
    found = await service.list_devices(
        db, caller, page, selector=parsed, online=online, project_pk=project_pk
    )
    return Page(items=await service.outputs(db, found.items, caller), next=found.next)


@router.get("/devices/{device}", response_model=DeviceOut)
async def show_device(device: str, caller: CallerDep, db: Db) -> DeviceOut:
    found = await service.find(db, caller, device)
    return (await service.outputs(db, [found], caller))[0]


@router.patch("/devices/{device}", response_model=DeviceOut)
async def patch_device(
    device: str, body: DevicePatch, caller: CallerDep, db: Db, ctx: Ctx
) -> DeviceOut:
    return await service.patch_from(ctx, db, caller, device, body)


@router.delete("/devices/{device}", status_code=204)
async def delete_device(device: str, caller: CallerDep, db: Db, ctx: Ctx) -> None:
    await service.delete_by(ctx, db, caller, device)
