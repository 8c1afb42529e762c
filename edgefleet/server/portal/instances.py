""" "My instances": the signed-in user's personal instances and those shared
with them (open, share, stop), and a Launch button for every launchable
application of their projects. Handlers call the instances service, as the
API's routes do, so the portal and the API apply the same rules."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from edgefleet.server.deps import Ctx, Db
from edgefleet.server.errors import ApiError
from edgefleet.server.instances import service as instances
from edgefleet.server.instances import view
from edgefleet.server.instances.schemas import InstanceIn, ShareIn
from edgefleet.server.pagination import PageParams
from edgefleet.server.portal import web
from edgefleet.server.portal.web import CheckedForm, Viewer, ViewerDep

router = web.page_router()
ALL = PageParams(limit=1000, after=0)


async def _launchable(db: Db, viewer: Viewer) -> list[dict[str, Any]]:
    """Launchable applications the viewer may launch (developer role and up)."""
    return [
        {"id": app.id, "name": app.name, "idle_timeout": timeout}
        for app, timeout in await instances.launchable_apps(db, viewer.caller)
    ]


async def _page(
    request: Request, viewer: Viewer, db: Db, status: int = 200, error: str = ""
) -> Response:
    page = await instances.visible(db, viewer.caller, ALL)
    context = {
        "instances": [await view.output(db, i) for i in reversed(page.items)],
        "launchable": await _launchable(db, viewer),
        "me": viewer.caller.name,
        "error": error,
    }
    return web.render(request, "instances.html", context, status=status)


@router.get("/instances")
async def instances_page(request: Request, viewer: ViewerDep, db: Db) -> Response:
    return await _page(request, viewer, db)


@router.post("/instances/launch")
async def launch(
    request: Request, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    try:
        body = web.build(InstanceIn, app=web.field(form, "app"))
        await instances.launch(ctx, db, viewer.caller, body)
    except ApiError as exc:
        web.refused(exc)
        return await _page(request, viewer, db, status=exc.status, error=exc.message)
    return web.redirect("/instances")


@router.post("/instances/{instance}/share")
async def share(
    request: Request, instance: str, viewer: ViewerDep, form: CheckedForm, db: Db
) -> Response:
    try:
        body = web.build(ShareIn, user=web.field(form, "user"))
        found = await instances.find(db, viewer.caller, instance)
        await instances.share(db, viewer.caller, found, body.user)
    except ApiError as exc:
        web.refused(exc)
        return await _page(request, viewer, db, status=exc.status, error=exc.message)
    return web.redirect("/instances")


@router.post("/instances/{instance}/stop")
async def stop(
    request: Request, instance: str, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    try:
        found = await instances.find(db, viewer.caller, instance)
        await instances.stop_by(ctx, db, viewer.caller, found)
    except ApiError as exc:
        web.refused(exc)
        return await _page(request, viewer, db, status=exc.status, error=exc.message)
    return web.redirect("/instances")
