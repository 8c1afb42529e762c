""" "My instances": the signed-in user's personal instances and those shared
with them (open, share, stop), and a Launch button for every launchable
application of their projects. Handlers call the instances API's own
functions, so the portal and the API apply the same rules."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from edgefleet.server.applications.tables import Application
from edgefleet.server.auth.roles import Permission
from edgefleet.server.deps import Ctx, Db
from edgefleet.server.errors import ApiError
from edgefleet.server.instances import routes as instance_api
from edgefleet.server.instances.schemas import InstanceIn, ShareIn
from edgefleet.server.instances.tables import Launchable
from edgefleet.server.pagination import PageParams
from edgefleet.server.portal.web import (
    CheckedForm,
    PortalRoute,
    Viewer,
    ViewerDep,
    build,
    field,
    redirect,
    refused,
    render,
)

router = APIRouter(route_class=PortalRoute, include_in_schema=False)
ALL = PageParams(limit=1000, after=0)


async def _launchable(db: Db, viewer: Viewer) -> list[dict[str, Any]]:
    """Launchable applications the viewer may launch (developer role and up)."""
    rows = await db.execute(
        select(Application, Launchable.idle_timeout)
        .join(Launchable, Launchable.application_pk == Application.pk)
        .order_by(Application.name)
    )
    return [
        {"id": app.id, "name": app.name, "idle_timeout": timeout}
        for app, timeout in rows.all()
        if viewer.can(app.project_pk, Permission.MANAGE_APPS)
    ]


async def _page(
    request: Request, viewer: Viewer, db: Db, status: int = 200, error: str = ""
) -> Response:
    page = await instance_api.list_instances(viewer.caller, db, ALL)
    context = {
        "instances": list(reversed(page.items)),
        "launchable": await _launchable(db, viewer),
        "me": viewer.caller.name,
        "error": error,
    }
    return render(request, "instances.html", context, status=status)


@router.get("/instances")
async def instances_page(request: Request, viewer: ViewerDep, db: Db) -> Response:
    return await _page(request, viewer, db)


@router.post("/instances/launch")
async def launch(
    request: Request, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    try:
        body = build(InstanceIn, app=field(form, "app"))
        await instance_api.launch_instance(body, viewer.caller, db, ctx)
    except ApiError as exc:
        refused(exc)
        return await _page(request, viewer, db, status=exc.status, error=exc.message)
    return redirect("/instances")


@router.post("/instances/{instance}/share")
async def share(
    request: Request, instance: str, viewer: ViewerDep, form: CheckedForm, db: Db
) -> Response:
    try:
        body = build(ShareIn, user=field(form, "user"))
        await instance_api.share_instance(instance, body, viewer.caller, db)
    except ApiError as exc:
        refused(exc)
        return await _page(request, viewer, db, status=exc.status, error=exc.message)
    return redirect("/instances")


@router.post("/instances/{instance}/stop")
async def stop(
    request: Request, instance: str, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    try:
        await instance_api.stop_instance(instance, viewer.caller, db, ctx)
    except ApiError as exc:
        refused(exc)
        return await _page(request, viewer, db, status=exc.status, error=exc.message)
    return redirect("/instances")
