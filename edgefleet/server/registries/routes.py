from __future__ import annotations

from fastapi import APIRouter, Response

from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.pagination import Page
from edgefleet.server.projects import service as projects
from edgefleet.server.projects.tables import Project
from edgefleet.server.registries import service
from edgefleet.server.registries.schemas import RegistryIn, RegistryOut
from edgefleet.server.registries.tables import RegistryCredential

router = APIRouter(tags=["registries"])


def _out(project: Project, row: RegistryCredential) -> RegistryOut:
    return RegistryOut(
        id=row.id,
        project=project.name,
        project_id=project.id,
        registry=row.host,
        username=row.username,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
    )


@router.post("/projects/{project}/registries", status_code=201, response_model=RegistryOut)
async def add_registry(
    project: str, body: RegistryIn, caller: CallerDep, db: Db, ctx: Ctx, response: Response
) -> RegistryOut:
    """Store credentials for a private registry (201), or replace them (200)."""
    found = await projects.find(db, caller, project)
    row, created = await service.put(ctx, db, caller, found, body)
    if not created:
        response.status_code = 200
    return _out(found, row)


@router.get("/projects/{project}/registries", response_model=Page[RegistryOut])
async def list_registries(
    project: str, caller: CallerDep, db: Db, page: Paging
) -> Page[RegistryOut]:
    """Registries with stored credentials: host and username only, never the password."""
    found = await projects.find(db, caller, project)
    listed = await service.visible(db, caller, found, page)
    return Page(items=[_out(found, r) for r in listed.items], next=listed.next)


@router.delete("/projects/{project}/registries/{registry}", status_code=204)
async def remove_registry(project: str, registry: str, caller: CallerDep, db: Db, ctx: Ctx) -> None:
    found = await projects.find(db, caller, project)
    await service.remove(ctx, db, caller, found, await service.find(db, found, registry))
