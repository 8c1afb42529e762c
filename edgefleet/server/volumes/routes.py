"""``/projects/{project}/volumes``: storage that outlives a job (issue 21)."""

from __future__ import annotations

from fastapi import APIRouter

from edgefleet.server.deps import CallerDep, Db, Paging
from edgefleet.server.pagination import Page, next_cursor
from edgefleet.server.projects import service as projects
from edgefleet.server.projects.tables import Project
from edgefleet.server.volumes import service
from edgefleet.server.volumes.schemas import VolumeIn, VolumeOut
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
    rows = await service.listed(db, found, page.after, page.limit)
    return Page(
        items=[_out(found, r) for r in rows[: page.limit]],
        next=next_cursor([r.pk for r in rows], page.limit),
    )
