"""The dashboard: devices online/ready/offline, jobs by state, recent events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from edgefleet.server.deps import Db
from edgefleet.server.devices import service as devices
from edgefleet.server.events import service as events
from edgefleet.server.jobs import service as jobs
from edgefleet.server.portal.assets import STATIC
from edgefleet.server.portal.web import PortalRoute, Viewer, ViewerDep, render

router = APIRouter(route_class=PortalRoute, include_in_schema=False)

JOB_STATES = ["pending", "deploying", "running", "completed", "failed", "cancelled", "expired"]


async def _summary(db: Db, viewer: Viewer) -> dict[str, Any]:
    counts = await devices.count_status(db, viewer.caller)
    by_state = await jobs.count_states(db, viewer.caller)
    states = [s for s in JOB_STATES if s in by_state or s in ("pending", "running", "failed")]
    states += sorted(set(by_state) - set(JOB_STATES))
    return {
        "counts": counts,
        "jobs": [(s, by_state.get(s, 0)) for s in states],
        "events": await events.recent(db, viewer.caller, limit=15),
    }


@router.get("/")
async def dashboard(request: Request, viewer: ViewerDep, db: Db) -> Response:
    return render(request, "dashboard.html", await _summary(db, viewer))


@router.get("/favicon.ico")
async def favicon() -> Response:
    """Pages without an icon link (the apps behind the proxy, too) ask for this."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


@router.get("/portal/fragments/dashboard")
async def dashboard_fragment(request: Request, viewer: ViewerDep, db: Db) -> Response:
    return render(request, "fragments/dashboard.html", await _summary(db, viewer))
