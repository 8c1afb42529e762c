"""HTTP: applications and their versions. The rules, queries and commits are in
:mod:`.service`, the answers' shape in :mod:`.view`."""

from __future__ import annotations

from fastapi import APIRouter, Query

from edgefleet.server.applications import service, view
from edgefleet.server.applications.schemas import (
    ApplicationIn,
    ApplicationOut,
    SpecSource,
    ValidateOut,
    VersionIn,
    VersionOut,
)
from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.pagination import Page

router = APIRouter(tags=["applications"])


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
    return await view.application(db, await service.create_from(ctx, db, caller, body))


@router.get("/applications", response_model=Page[ApplicationOut])
async def list_applications(
    caller: CallerDep, db: Db, page: Paging, project: str | None = Query(None)
) -> Page[ApplicationOut]:
    found = await service.listing(db, caller, page, project)
    return Page(items=[await view.application(db, a) for a in found.items], next=found.next)


@router.get("/applications/{app}", response_model=ApplicationOut)
async def show_application(app: str, caller: CallerDep, db: Db) -> ApplicationOut:
    return await view.application(db, await service.find(db, caller, app))


@router.delete("/applications/{app}", status_code=204)
async def delete_application(app: str, caller: CallerDep, db: Db) -> None:
    await service.delete(db, caller, await service.find(db, caller, app))


@router.get("/applications/{app}/versions", response_model=Page[VersionOut])
async def list_versions(app: str, caller: CallerDep, db: Db) -> Page[VersionOut]:
    found = await service.find(db, caller, app)
    return Page(items=[view.version(v, False) for v in await service.versions(db, found)])


@router.post("/applications/{app}/versions", status_code=201, response_model=VersionOut)
async def create_version(
    app: str, body: VersionIn, caller: CallerDep, db: Db, ctx: Ctx
) -> VersionOut:
    found = await service.find(db, caller, app)
    return view.version(await service.add_version_from(ctx, db, caller, found, body), True)


@router.get("/applications/{app}/versions/{version}", response_model=VersionOut)
async def show_version(app: str, version: str, caller: CallerDep, db: Db) -> VersionOut:
    found = await service.find(db, caller, app)
    return view.version(await service.find_version(db, found, version), True)
