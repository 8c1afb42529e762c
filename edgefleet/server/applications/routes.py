from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import select

from edgefleet.server.applications import contexts, service
from edgefleet.server.applications.schemas import (
    ApplicationIn,
    ApplicationOut,
    SpecSource,
    ValidateOut,
    VersionIn,
    VersionOut,
)
from edgefleet.server.applications.tables import Application, AppVersion
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.data.objects import ObjectStore, open_store
from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.pagination import Page, next_cursor
from edgefleet.server.projects import service as projects

router = APIRouter(tags=["applications"])


def _store(ctx: ServerContext) -> ObjectStore:
    return open_store(ctx.settings.object_store, ctx.settings.data_dir)


async def _app_out(db: Db, app: Application) -> ApplicationOut:
    project = (await projects.names(db, {app.project_pk}))[app.project_pk]
    names = [v.version for v in await service.versions(db, app)]
    return ApplicationOut(
        id=app.id,
        name=app.name,
        project=project.name,
        project_id=project.id,
        description=app.description,
        created_at=app.created_at,
        versions=names,
        latest=names[-1] if names else None,
    )


def _version_out(version: AppVersion, full: bool) -> VersionOut:
    return VersionOut(
        id=version.id,
        version=version.version,
        created_at=version.created_at,
        created_by=version.created_by,
        services=sorted((version.spec or {}).get("services", {}) or {}),
        warnings=version.warnings,
        spec=version.spec if full else None,
        compose=version.compose if full else None,
    )


@router.post("/applications/validate", response_model=ValidateOut)
async def validate(body: SpecSource, caller: CallerDep, ctx: Ctx) -> ValidateOut:
    """Check a spec without storing anything: every finding, with line numbers.
    A file that cannot be read at all (bad YAML, a YAML bomb) answers 422."""
    source = body.compose if body.compose is not None else (body.spec or {})
    findings, services = await service.validate_source(ctx.limits, source)
    return ValidateOut(
        valid=not any(f.level == "error" for f in findings),
        findings=[f.to_dict() for f in findings],
        services=services,
    )


@router.post("/applications", status_code=201, response_model=ApplicationOut)
async def create_application(
    body: ApplicationIn, caller: CallerDep, db: Db, ctx: Ctx
) -> ApplicationOut:
    project = await projects.find(db, caller, body.project)
    # The role first: parsing a Compose file costs a worker, and a refusal must
    # not depend on what the file says.
    caller.require(project.pk, Permission.MANAGE_APPS, f"project {project.name!r}")
    if body.context is not None:
        await contexts.require(_store(ctx), project.pk, body.context)
    raw, warnings = await service.check_source(ctx.limits, body.spec, body.compose, body.context)
    app = await service.create(
        db,
        caller,
        project,
        name=body.name,
        description=body.description,
        version=body.version,
        raw=raw,
        text=body.compose,
        warnings=warnings,
    )
    ctx.events.record(
        "application.created",
        project.pk,
        f"application {app.name} version {body.version} created by {caller.name}",
        actor=caller.name,
    )
    return await _app_out(db, app)


@router.get("/applications", response_model=Page[ApplicationOut])
async def list_applications(
    caller: CallerDep, db: Db, page: Paging, project: str | None = Query(None)
) -> Page[ApplicationOut]:
    query = select(Application).where(Application.pk > page.after)
    visible = caller.visible_projects()
    if visible is not None:
        query = query.where(Application.project_pk.in_(visible))
    if project:
        query = query.where(Application.project_pk == (await projects.find(db, caller, project)).pk)
    rows = list(await db.scalars(query.order_by(Application.pk).limit(page.limit + 1)))
    return Page(
        items=[await _app_out(db, a) for a in rows[: page.limit]],
        next=next_cursor([a.pk for a in rows], page.limit),
    )


@router.get("/applications/{app}", response_model=ApplicationOut)
async def show_application(app: str, caller: CallerDep, db: Db) -> ApplicationOut:
    return await _app_out(db, await service.find(db, caller, app))


@router.delete("/applications/{app}", status_code=204)
async def delete_application(app: str, caller: CallerDep, db: Db) -> None:
    await service.delete(db, caller, await service.find(db, caller, app))


@router.get("/applications/{app}/versions", response_model=Page[VersionOut])
async def list_versions(app: str, caller: CallerDep, db: Db) -> Page[VersionOut]:
    found = await service.find(db, caller, app)
    return Page(
        items=[_version_out(v, False) for v in await service.versions(db, found)], next=None
    )


@router.post("/applications/{app}/versions", status_code=201, response_model=VersionOut)
async def create_version(
    app: str, body: VersionIn, caller: CallerDep, db: Db, ctx: Ctx
) -> VersionOut:
    found = await service.find(db, caller, app)
    caller.require(found.project_pk, Permission.MANAGE_APPS, f"application {found.name!r}")
    if body.context is not None:
        await contexts.require(_store(ctx), found.project_pk, body.context)
    raw, warnings = await service.check_source(ctx.limits, body.spec, body.compose, body.context)
    version = await service.add_version(
        db, caller, found, version=body.version, raw=raw, text=body.compose, warnings=warnings
    )
    ctx.events.record(
        "application.version",
        found.project_pk,
        f"application {found.name} version {body.version} added by {caller.name}",
        actor=caller.name,
    )
    return _version_out(version, True)


@router.get("/applications/{app}/versions/{version}", response_model=VersionOut)
async def show_version(app: str, version: str, caller: CallerDep, db: Db) -> VersionOut:
    found = await service.find(db, caller, app)
    return _version_out(await service.find_version(db, found, version), True)
