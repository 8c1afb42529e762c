"""Agent upgrades in the portal (issue 18): the releases the server holds, the
rollouts with each device's state and the reason of a rollback, and the form
that starts one. Everything goes through the API's own services."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from edgefleet.server.agent_releases import service
from edgefleet.server.agent_releases.schemas import UpgradeIn
from edgefleet.server.deps import Ctx, Db
from edgefleet.server.errors import ApiError
from edgefleet.server.pagination import PageParams
from edgefleet.server.portal import web
from edgefleet.server.portal.web import CheckedForm, Viewer, ViewerDep
from edgefleet.server.projects import service as projects

router = web.page_router()

LISTED = PageParams(limit=100, after=0)


async def _page(db: Db, viewer: Viewer) -> dict[str, Any]:
    releases = await service.list_releases(db, LISTED)
    rows = await service.list_upgrades(db, viewer.caller, LISTED)
    return {
        "releases": [service.release_out(r) for r in reversed(releases.items)],
        "upgrades": [await service.upgrade_out(db, r) for r in reversed(rows.items)],
        "projects": await projects.visible(db, viewer.caller),
        "form": {},
        "error": "",
    }


@router.get("/agent-upgrades")
async def upgrades_page(request: Request, viewer: ViewerDep, db: Db) -> Response:
    return web.render(request, "agent_upgrades.html", await _page(db, viewer))


@router.post("/agent-upgrades")
async def start_upgrade(
    request: Request, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    """The form: a version, devices (ids or names) or a selector, the batch size."""
    values = {k: web.field(form, k) for k in ("version", "project", "devices", "selector")}
    values["max_parallel"] = web.field(form, "max_parallel", "1")
    context = await _page(db, viewer)
    context["form"] = values
    names = [d.strip() for d in values["devices"].split(",") if d.strip()]
    try:
        body = web.build(
            UpgradeIn,
            version=values["version"],
            devices=names or None,
            selector=None if names else values["selector"],
            project=values["project"] or None,
            max_parallel=values["max_parallel"] or 1,
        )
        made = await service.start_upgrade(ctx, db, viewer.caller, body)
    except ApiError as exc:
        web.refused(exc)
        context["error"] = exc.message
        return web.render(request, "agent_upgrades.html", context, status=exc.status)
    return web.redirect(f"/agent-upgrades/{made.id}")


@router.get("/agent-upgrades/{upgrade}")
async def upgrade_page(request: Request, upgrade: str, viewer: ViewerDep, db: Db) -> Response:
    found = await service.find_upgrade(db, viewer.caller, upgrade)
    return web.render(
        request, "agent_upgrade.html", {"upgrade": await service.upgrade_out(db, found)}
    )
