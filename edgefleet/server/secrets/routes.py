"""``/projects/{project}/secrets``: values go in, only names and versions come out."""

from __future__ import annotations

from fastapi import APIRouter, Response

from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.errors import Invalid
from edgefleet.server.pagination import Page
from edgefleet.server.projects import service as projects
from edgefleet.server.projects.tables import Project
from edgefleet.server.secrets import service
from edgefleet.server.secrets.schemas import SecretIn, SecretOut, SecretValue, check_name
from edgefleet.server.secrets.tables import ProjectSecret

router = APIRouter(tags=["secrets"])


def _out(project: Project, row: ProjectSecret) -> SecretOut:
    return SecretOut(
        id=row.id,
        name=row.name,
        project=project.name,
        project_id=project.id,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def _name(name: str) -> str:
    try:
        return check_name(name)
    except ValueError as exc:
        raise Invalid(f"name: {exc}", field="name") from exc


@router.post("/projects/{project}/secrets", status_code=201, response_model=SecretOut)
async def create_secret(
    project: str, body: SecretIn, caller: CallerDep, db: Db, ctx: Ctx
) -> SecretOut:
    """Store a secret (operator or owner). The answer never holds the value."""
    found = await projects.find(db, caller, project)
    return _out(found, await service.create(ctx, db, caller, found, body))


@router.get("/projects/{project}/secrets", response_model=Page[SecretOut])
async def list_secrets(project: str, caller: CallerDep, db: Db, page: Paging) -> Page[SecretOut]:
    """Name, version, who changed it and when; never the value."""
    found = await projects.find(db, caller, project)
    listed = await service.visible(db, caller, found, page)
    return Page(items=[_out(found, r) for r in listed.items], next=listed.next)


@router.get("/projects/{project}/secrets/{name}", response_model=SecretOut)
async def show_secret(project: str, name: str, caller: CallerDep, db: Db) -> SecretOut:
    found = await projects.find(db, caller, project)
    return _out(found, await service.find(db, caller, found, name))


@router.put("/projects/{project}/secrets/{name}", response_model=SecretOut)
async def rotate_secret(
    project: str,
    name: str,
    body: SecretValue,
    caller: CallerDep,
    db: Db,
    ctx: Ctx,
    response: Response,
) -> SecretOut:
    """Rotate: a new value and version (200), or a new secret (201). The jobs
    that use it redeploy the services that use it."""
    found = await projects.find(db, caller, project)
    row, created = await service.rotate(ctx, db, caller, found, _name(name), body)
    if created:
        response.status_code = 201
    return _out(found, row)


@router.delete("/projects/{project}/secrets/{name}", status_code=204)
async def delete_secret(project: str, name: str, caller: CallerDep, db: Db, ctx: Ctx) -> None:
    found = await projects.find(db, caller, project)
    await service.remove(ctx, db, caller, found, name)
