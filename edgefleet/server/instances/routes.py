"""``/instances`` and ``/applications/{app}/launchable``: personal instances (issue 21)."""

from __future__ import annotations

from fastapi import APIRouter

from edgefleet.server.applications import service as applications
from edgefleet.server.applications.tables import Application
from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.instances import saves, service, view
from edgefleet.server.instances.schemas import (
    InstanceIn,
    InstanceOut,
    LaunchableIn,
    LaunchableOut,
    SaveIn,
    SaveOut,
    ShareIn,
)
from edgefleet.server.instances.tables import Launchable
from edgefleet.server.pagination import Page

router = APIRouter(tags=["instances"])


def _launchable_out(app: Application, row: Launchable | None) -> LaunchableOut:
    return LaunchableOut(
        application=app.name,
        application_id=app.id,
        launchable=row is not None,
        idle_timeout=row.idle_timeout if row is not None else None,
    )


@router.get("/applications/{app}/launchable", response_model=LaunchableOut)
async def show_launchable(app: str, caller: CallerDep, db: Db) -> LaunchableOut:
    found = await applications.find(db, caller, app)
    return _launchable_out(found, await service.launchable_of(db, found))


@router.put("/applications/{app}/launchable", response_model=LaunchableOut)
async def set_launchable(app: str, body: LaunchableIn, caller: CallerDep, db: Db) -> LaunchableOut:
    """Let members launch personal instances of the application (developer role and up)."""
    found = await applications.find(db, caller, app)
    return _launchable_out(found, await service.set_launchable(db, caller, found, body))


@router.post("/instances", status_code=201, response_model=InstanceOut)
async def launch_instance(body: InstanceIn, caller: CallerDep, db: Db, ctx: Ctx) -> InstanceOut:
    """Launch the caller's own instance of a launchable application on one device."""
    return await view.output(db, await service.launch(ctx, db, caller, body))


@router.get("/instances", response_model=Page[InstanceOut])
async def list_instances(caller: CallerDep, db: Db, page: Paging) -> Page[InstanceOut]:
    """The caller's instances and those shared with them."""
    found = await service.visible(db, caller, page)
    return Page(items=[await view.output(db, r) for r in found.items], next=found.next)


@router.get("/instances/{instance}", response_model=InstanceOut)
async def show_instance(instance: str, caller: CallerDep, db: Db) -> InstanceOut:
    return await view.output(db, await service.find(db, caller, instance))


@router.post("/instances/{instance}/share", response_model=InstanceOut)
async def share_instance(instance: str, body: ShareIn, caller: CallerDep, db: Db) -> InstanceOut:
    """Let another member of the project open the instance (its owner only)."""
    found = await service.find(db, caller, instance)
    await service.share(db, caller, found, body.user)
    return await view.output(db, found)


@router.delete("/instances/{instance}/share/{user}", response_model=InstanceOut)
async def unshare_instance(instance: str, user: str, caller: CallerDep, db: Db) -> InstanceOut:
    found = await service.find(db, caller, instance)
    await service.unshare(db, caller, found, user)
    return await view.output(db, found)


@router.post("/instances/{instance}/stop", response_model=InstanceOut)
async def stop_instance(instance: str, caller: CallerDep, db: Db, ctx: Ctx) -> InstanceOut:
    """Remove the instance's workload from its device (its owner, or an admin)."""
    found = await service.find(db, caller, instance)
    await service.stop_by(ctx, db, caller, found)
    return await view.output(db, found)


@router.post("/instances/{instance}/save", status_code=202, response_model=SaveOut)
async def save_instance(
    instance: str, body: SaveIn, caller: CallerDep, db: Db, ctx: Ctx
) -> SaveOut:
    """Commit a service's container on the device, push it to the project's
    registry and record it as APP:VERSION (the owner, with the developer role);
    202: follow it with ``GET /instances/{id}/saves/{save}``."""
    found = await service.find(db, caller, instance)
    return (await saves.start(ctx, db, caller, found, body)).out()


@router.get("/instances/{instance}/saves/{save}", response_model=SaveOut)
async def show_save(instance: str, save: str, caller: CallerDep, db: Db) -> SaveOut:
    """State, progress (layers and bytes pushed) and error of one save."""
    found = await service.find(db, caller, instance)
    return saves.find(found, save).out()
