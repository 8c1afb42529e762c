"""The fleet health view: every device the viewer may read, with its latest
CPU, memory, disk and temperature, the ones that need attention first
(issue 18). Charts of one device are on its own page (telemetry.js)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from edgefleet.server.auth.roles import Permission
from edgefleet.server.db.base import utcnow
from edgefleet.server.deps import Db
from edgefleet.server.devices import service as devices
from edgefleet.server.pagination import PageParams
from edgefleet.server.portal import web
from edgefleet.server.portal.web import ViewerDep
from edgefleet.server.telemetry import query

router = web.page_router()

LIMIT = 500
STALE = timedelta(minutes=5)  # a sample older than this is shown as stale
WARN, ALERT = 75.0, 90.0


def level(value: float | None) -> str:
    if value is None:
        return ""
    return "alert" if value >= ALERT else "warn" if value >= WARN else "ok"


@router.get("/fleet/health")
async def fleet_health(request: Request, viewer: ViewerDep, db: Db) -> Response:
    page = await devices.list_devices(db, viewer.caller, PageParams(limit=LIMIT, after=0))
    rows = [r for r in page.items if viewer.can(r[0].project_pk, Permission.READ)]
    shown = await devices.outputs(db, rows, viewer.caller)
    samples = await query.latest(db, [d.pk for d, _ in rows])
    now = utcnow()
    items: list[dict[str, Any]] = []
    for (device, _presence), out in zip(rows, shown, strict=True):
        point = samples.get(device.pk)
        worst = max(point.cpu, point.memory, point.disk) if point else -1.0
        items.append(
            {
                "device": out,
                "sample": point,
                "stale": point is None or now - point.time > STALE,
                "worst": worst,
                "levels": {
                    "cpu": level(point.cpu if point else None),
                    "memory": level(point.memory if point else None),
                    "disk": level(point.disk if point else None),
                },
            }
        )
    items.sort(key=lambda i: (-i["worst"], i["device"].name))
    return web.render(
        request,
        "fleet_health.html",
        {"items": items, "more": len(rows) > LIMIT, "reporting": len(samples)},
    )
