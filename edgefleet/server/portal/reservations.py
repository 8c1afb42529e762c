"""Reservations in the portal: a calendar (devices x days, server-rendered
CSS grid), the booking form with its dry run, cancel; and lending/revoking
on a device's page. Every action goes through the API's own services, so
the portal has no rule of its own to get wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from edgefleet.server.deps import Ctx, Db
from edgefleet.server.devices import service as devices
from edgefleet.server.errors import ApiError
from edgefleet.server.loans import changes as loan_changes
from edgefleet.server.loans.schemas import LoanIn, LoanRights
from edgefleet.server.pagination import PageParams
from edgefleet.server.portal import web
from edgefleet.server.portal.web import CheckedForm, Viewer, ViewerDep
from edgefleet.server.projects import service as projects
from edgefleet.server.reservations import changes, service
from edgefleet.server.reservations.booking import Plan
from edgefleet.server.reservations.schemas import ReservationIn, ReservationOut

router = web.page_router()

DAYS = 14
DEVICE_ROWS = 200


def _days(first: datetime) -> list[datetime]:
    return [first + timedelta(days=n) for n in range(DAYS)]


def _grid(items: list[ReservationOut], days: list[datetime]) -> list[dict[str, Any]]:
    """One row per booked device: for each day, the bookings touching it."""
    rows: dict[str, dict[str, Any]] = {}
    for item in items:
        for device, name in zip(item.devices, item.device_names, strict=False):
            row = rows.setdefault(device, {"id": device, "name": name, "cells": [[] for _ in days]})
            for n, day in enumerate(days):
                if item.start < day + timedelta(days=1) and item.end > day:
                    row["cells"][n].append(item)
    return sorted(rows.values(), key=lambda r: r["name"])[:DEVICE_ROWS]


async def _calendar(db: Db, viewer: Viewer, start: str) -> dict[str, Any]:
    try:
        first = datetime.fromisoformat(start).replace(tzinfo=UTC) if start else None
    except ValueError:
        first = None
    first = first or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = _days(first)
    page = await service.listing(
        db,
        viewer.caller,
        PageParams(limit=1000, after=0),
        since=days[0],
        until=days[-1] + timedelta(days=1),
    )
    items = await service.outputs(db, page.items)
    return {
        "days": days,
        "grid": _grid(items, days),
        "reservations": items,
        "earlier": (first - timedelta(days=7)).date().isoformat(),
        "later": (first + timedelta(days=7)).date().isoformat(),
        "projects": await projects.visible(db, viewer.caller),
        "form": {},
        "dry": None,
        "error": "",
        "conflicts": [],
    }


@router.get("/reservations")
async def calendar(request: Request, viewer: ViewerDep, db: Db, start: str = "") -> Response:
    return web.render(request, "reservations.html", await _calendar(db, viewer, start))


@router.post("/reservations")
async def book(
    request: Request, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    """Book, or (the "Check" button) show what would be booked and every conflict."""
    values = {k: web.field(form, k) for k in ("project", "devices", "selector", "count", "spread")}
    values |= {k: web.field(form, k) for k in ("start", "end", "exclusive", "action")}
    context = await _calendar(db, viewer, "")
    context["form"] = values
    devices_list = [d.strip() for d in values["devices"].split(",") if d.strip()]
    try:
        body = web.build(
            ReservationIn,
            project=values["project"],
            devices=devices_list or None,
            selector=values["selector"] or None,
            count=values["count"] or None,
            spread=values["spread"] or None,
            start=values["start"],
            end=values["end"],
            exclusive=values["exclusive"] != "shared",
            dry_run=values["action"] == "check",
        )
        made = await changes.book(ctx, db, viewer.caller, body)
    except ApiError as exc:
        web.refused(exc)
        context["error"] = exc.message
        context["conflicts"] = exc.extra.get("conflicts", [])
        return web.render(request, "reservations.html", context, status=exc.status)
    if isinstance(made, Plan):
        context["dry"] = service.dry_run_out(made)
        return web.render(request, "reservations.html", context)
    return web.redirect(f"/reservations?start={made.start.date().isoformat()}")


@router.post("/reservations/{reservation}/cancel")
async def cancel(
    reservation: str, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    await changes.cancel(ctx, db, viewer.caller, reservation)
    return web.redirect("/reservations")


@router.post("/devices/{device}/loans")
async def lend(
    request: Request, device: str, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    found, _ = await devices.find(db, viewer.caller, device)
    try:
        body = web.build(
            LoanIn,
            project=web.field(form, "project"),
            rights=LoanRights(process=web.field(form, "process") == "yes"),
            expose_labels=[k.strip() for k in web.field(form, "expose").split(",") if k.strip()],
            time_share=float(web.field(form, "time_share") or 1),
        )
        await loan_changes.lend(ctx, db, viewer.caller, found.id, body)
    except (ApiError, ValueError) as exc:
        if isinstance(exc, ApiError):
            web.refused(exc)
        message = exc.message if isinstance(exc, ApiError) else "time share must be a number"
        return web.redirect(f"/devices/{found.id}?loan_error={message[:200]}")
    return web.redirect(f"/devices/{found.id}")


@router.post("/devices/{device}/loans/{project}/revoke")
async def revoke(
    device: str, project: str, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    found, _ = await devices.find(db, viewer.caller, device)
    await loan_changes.revoke(ctx, db, viewer.caller, found.id, project)
    return web.redirect(f"/devices/{found.id}")
