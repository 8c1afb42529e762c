"""The alerts page (issue 18): one project's alerts firing now and recently
resolved, its rules and its webhooks. Rules and webhooks are managed through
the API and ``edgefleet alerts``; this page shows them."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from edgefleet.server.alerts import service
from edgefleet.server.alerts.delivery import alert_out
from edgefleet.server.deps import Db
from edgefleet.server.errors import NotFound
from edgefleet.server.pagination import PageParams
from edgefleet.server.portal import web
from edgefleet.server.portal.web import ViewerDep

router = web.page_router()

RECENT = PageParams(limit=50, after=0)
ALL = PageParams(limit=1000, after=0)


@router.get("/alerts")
async def alerts_page(
    request: Request, viewer: ViewerDep, db: Db, project: str | None = None
) -> Response:
    choices = await service.readable_projects(db, viewer.caller)
    chosen = next((p for p in choices if project in (p.name, p.id)), None)
    if project is not None and chosen is None:
        raise NotFound(f"project {project!r} not found", field="project")
    chosen = chosen or (choices[0] if choices else None)
    context: dict[str, object] = {"projects": choices, "project": chosen}
    if chosen is not None:
        caller = viewer.caller
        firing = await service.alerts(db, caller, chosen, RECENT, "firing")
        recent = await service.alerts(db, caller, chosen, RECENT, "resolved")
        context["firing"] = [alert_out(a, r, chosen) for a, r in firing.items]
        context["recent"] = [alert_out(a, r, chosen) for a, r in recent.items]
        context["rules"] = (await service.rules(db, caller, chosen, ALL)).items
        context["webhooks"] = (await service.webhooks(db, caller, chosen, ALL)).items
    return web.render(request, "alerts.html", context)
