"""``/projects/{project}/volumes``: storage that outlives a job (issue 21)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from edgefleet.server.auth.roles import Permission
from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.errors import Conflict
from edgefleet.server.pagination import Page
from edgefleet.server.projects import service as projects
from edgefleet.server.projects.tables import Project
from edgefleet.server.volumes import devices, service
from edgefleet.server.volumes.schemas import VolumeDetail, VolumeIn, VolumeOut
from edgefleet.server.volumes.tables import ProjectVolume

router = APIRouter(tags=["volumes"])


def _out(project: Project, row: ProjectVolume) -> VolumeOut:
    return VolumeOut(
        id=row.id,
        name=row.name,
        project=project.name,
        project_id=project.id,
        engine_name=service.engine_name(project, row.name),
        created_by=row.created_by,
        created_at=row.created_at,
    )


@router.post("/projects/{project}/volumes", status_code=201, response_model=VolumeOut)
async def create_volume(project: str, body: VolumeIn, caller: CallerDep, db: Db) -> VolumeOut:
    """Declare a project volume (developer role and up); devices create it when a
    job first mounts it there."""
    found = await projects.find(db, caller, project)
    return _out(found, await service.create(db, caller, found, body.name))


@router.get("/projects/{project}/volumes", response_model=Page[VolumeOut])
async def list_volumes(project: str, caller: CallerDep, db: Db, page: Paging) -> Page[VolumeOut]:
    found = await projects.find(db, caller, project)
    listed = await service.listed(db, found, page)
    return Page(items=[_out(found, r) for r in listed.items], next=listed.next)


@router.get("/projects/{project}/volumes/{name}", response_model=VolumeDetail)
async def show_volume(project: str, name: str, caller: CallerDep, db: Db, ctx: Ctx) -> VolumeDetail:
    """The volume and, per device of the project, whether it holds it and its size
    (asked of each online device now)."""
    found = await projects.find(db, caller, project)
    row = await service.find(db, found, name)
    fleet = await devices.project_devices(db, found.pk)
    engine = service.engine_name(found, name)
    rows = await devices.ask_all(ctx, fleet, engine, "usage")
    return VolumeDetail(**_out(found, row).model_dump(), devices=rows)


@router.delete("/projects/{project}/volumes/{name}", response_model=VolumeDetail)
async def delete_volume(
    project: str, name: str, caller: CallerDep, db: Db, ctx: Ctx
) -> VolumeDetail:
    """Remove the volume from every online device of the project, then forget it.
    A device where a running workload mounts it keeps it: 409, nothing forgotten."""
    found = await projects.find(db, caller, project)
    caller.require(found.pk, Permission.MANAGE_APPS, f"project {found.name!r}")
    row = await service.find(db, found, name)
    fleet = await devices.project_devices(db, found.pk)
    engine = service.engine_name(found, name)
    rows = await devices.ask_all(ctx, fleet, engine, "remove")
    busy = [r.device_name for r in rows if r.state == "in use"]
    if busy:
        raise Conflict(
            f"volume {name} is in use on {', '.join(busy)}: stop the jobs that mount it first",
            field="name",
        )
    out = VolumeDetail(**_out(found, row).model_dump(), devices=rows)
    await service.forget(db, row)
    return out


@router.get("/projects/{project}/volumes/{name}/archive")
async def download_volume(
    project: str, name: str, device: str, caller: CallerDep, db: Db, ctx: Ctx
) -> StreamingResponse:
    """The volume's files on one device as a tar, streamed from the device
    (developer role and up: it is the project's raw data)."""
    found = await projects.find(db, caller, project)
    caller.require(found.pk, Permission.MANAGE_APPS, f"project {found.name!r}")
    await service.find(db, found, name)
    fleet = await devices.project_devices(db, found.pk)
    device_id, stream = await devices.open_archive(
        ctx, fleet, device, service.engine_name(found, name)
    )
    filename = f"{name}-{device_id}.tar"
    return StreamingResponse(
        devices.chunks(stream),
        media_type="application/x-tar",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
