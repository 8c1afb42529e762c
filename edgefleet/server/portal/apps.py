"""Applications: the list, one application's versions, a new application or
version from a pasted or uploaded Compose file. Findings (errors and
warnings, with line and key) are shown under the offending line of the
source, while typing (``/portal/fragments/validate``) and after a refused
upload."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from fastapi import Request
from fastapi.responses import Response

from edgefleet.server.applications import service as applications
from edgefleet.server.applications import view as app_view
from edgefleet.server.applications.schemas import ApplicationIn, VersionIn
from edgefleet.server.auth.roles import Permission
from edgefleet.server.deps import Ctx, Db
from edgefleet.server.errors import ApiError
from edgefleet.server.instances import service as launchables
from edgefleet.server.pagination import PageParams
from edgefleet.server.portal import web
from edgefleet.server.portal.web import CheckedForm, Viewer, ViewerDep
from edgefleet.server.projects import service as projects
from edgefleet.spec import compose

router = web.page_router()

EXAMPLE = """services:
  web:
    image: localhost/dashboard:1.0
    ports: ["8080"]
"""


@dataclass
class Line:
    number: int
    text: str
    findings: list[dict[str, Any]] = field(default_factory=list)


def annotate(
    source: str, findings: list[dict[str, Any]]
) -> tuple[list[Line], list[dict[str, Any]]]:
    """The source as numbered lines, each with the findings on it; and the
    findings that have no line (shown above the listing)."""
    lines = [Line(n, text) for n, text in enumerate(source.splitlines(), 1)]
    loose = []
    for finding in findings:
        number = finding.get("line")
        if isinstance(number, int) and 1 <= number <= len(lines):
            lines[number - 1].findings.append(finding)
        else:
            loose.append(finding)
    return lines, loose


async def check(request: Request, source: str) -> dict[str, Any]:
    """Findings of a Compose text, for the live check and the refused upload;
    read in a worker process within the server's Compose budget."""
    limits = request.app.state.ctx.limits
    findings: list[dict[str, Any]] = []
    if source.strip():
        findings = [f.to_dict() for f in await limits.parse(compose.validate, source)]
    lines, loose = annotate(source, findings)
    errors = sum(1 for f in findings if f["level"] == "error")
    return {
        "findings": findings,
        "lines": lines,
        "loose": loose,
        "errors": errors,
        "warnings": len(findings) - errors,
        "checked": bool(source.strip()),
    }


async def _projects_for(db: Db, viewer: Viewer) -> list[Any]:
    visible = await projects.visible(db, viewer.caller)
    return [p for p in visible if viewer.can(p.pk, Permission.MANAGE_APPS)]


async def _list_page(
    request: Request, viewer: Viewer, db: Db, form: dict[str, str], status: int = 200, **extra: Any
) -> Response:
    page = await applications.listing(db, viewer.caller, PageParams(limit=1000, after=0))
    context = {
        "apps": [await app_view.application(db, a) for a in page.items],
        "projects": await _projects_for(db, viewer),
        "form": form,
        "example": EXAMPLE,
        "error": "",
        "check": await check(request, form.get("compose", "")),
    }
    context.update(extra)
    return web.render(request, "apps.html", context, status=status)


@router.get("/apps")
async def app_list(request: Request, viewer: ViewerDep, db: Db) -> Response:
    return await _list_page(request, viewer, db, {})


@router.post("/apps")
async def create_app(
    request: Request, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    source = await web.text_or_upload(form, "compose", "file")
    values = {
        "project": web.field(form, "project", "default"),
        "name": web.field(form, "name"),
        "version": web.field(form, "version"),
        "description": web.field(form, "description"),
        "compose": source,
    }
    try:
        body = web.build(ApplicationIn, **values)
        created = await applications.create_from(ctx, db, viewer.caller, body)
    except ApiError as exc:
        web.refused(exc)
        return await _list_page(request, viewer, db, values, error=exc.message)
    return web.redirect(f"/apps/{created.id}")


async def _app_page(
    request: Request,
    viewer: Viewer,
    db: Db,
    ref: str,
    form: dict[str, str] | None = None,
    status: int = 200,
    error: str = "",
) -> Response:
    app = await applications.find(db, viewer.caller, ref)
    out = await app_view.application(db, app)
    versions = [app_view.version(v, False) for v in await applications.versions(db, app)]
    form = form or {}
    context = {
        "app": out,
        "versions": list(reversed(versions)),
        "can_manage": viewer.can(app.project_pk, Permission.MANAGE_APPS),
        "launchable": await launchables.launchable_of(db, app) is not None,  # issue 21
        "form": form,
        "error": error,
        "check": await check(request, form.get("compose", "")),
        "example": EXAMPLE,
    }
    return web.render(request, "app.html", context, status=status)


@router.get("/apps/{app}")
async def app_page(request: Request, app: str, viewer: ViewerDep, db: Db) -> Response:
    return await _app_page(request, viewer, db, app)


@router.post("/apps/{app}/versions")
async def create_version(
    request: Request, app: str, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    found = await applications.find(db, viewer.caller, app)
    source = await web.text_or_upload(form, "compose", "file")
    values = {"version": web.field(form, "version"), "compose": source}
    try:
        body = web.build(VersionIn, **values)
        version = await applications.add_version_from(ctx, db, viewer.caller, found, body)
    except ApiError as exc:
        web.refused(exc)
        return await _app_page(request, viewer, db, app, values, error=exc.message)
    return web.redirect(f"/apps/{found.id}/versions/{version.version}")


@router.get("/apps/{app}/versions/{version}")
async def version_page(
    request: Request, app: str, version: str, viewer: ViewerDep, db: Db
) -> Response:
    found = await applications.find(db, viewer.caller, app)
    out = app_view.version(await applications.find_version(db, found, version), True)
    source = out.compose
    if source is None:
        source = yaml.safe_dump(out.spec or {}, sort_keys=False)
    lines, _ = annotate(source, [w.model_dump() for w in out.warnings])
    context = {
        "app": await app_view.application(db, found),
        "version": out,
        "lines": lines,
        "can_deploy": viewer.can(found.project_pk, Permission.MANAGE_APPS),
    }
    return web.render(request, "version.html", context)


@router.post("/portal/fragments/validate")
async def validate(request: Request, viewer: ViewerDep, form: CheckedForm) -> Response:
    source = await web.text_or_upload(form, "compose", "file")
    return web.render(request, "fragments/findings.html", {"check": await check(request, source)})
