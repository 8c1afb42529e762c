"""Devices: the table with filters, and one device's page (resources,
peripherals, labels and metadata, jobs, events, agent logs, actions, console).

Agent logs and the console run in the browser against the API itself
(``/api/v1/devices/{id}/logs``, ``/api/v1/devices/{id}/exec/ws``) with the
session cookie, so the portal adds no second path to the device.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from edgefleet.labels import LabelError, parse_selector
from edgefleet.server.auth.roles import Permission
from edgefleet.server.deps import Ctx, Db
from edgefleet.server.devices import service as devices
from edgefleet.server.devices.schemas import DevicePatch
from edgefleet.server.errors import ApiError, Invalid
from edgefleet.server.events import service as events
from edgefleet.server.jobs import service as jobs
from edgefleet.server.loans import service as loans
from edgefleet.server.pagination import PageParams
from edgefleet.server.portal import web
from edgefleet.server.portal.web import CheckedForm, Viewer, ViewerDep
from edgefleet.server.projects import service as projects
from edgefleet.server.remote import device_actions as action_api

router = web.page_router()

LIST_LIMIT = 500
NOTICES = {
    "saved": "Labels and metadata saved.",
    "identify": "The device was asked to identify itself (see its agent log).",
    "restart": "The agent is restarting; the device will be back online in a few seconds.",
    "reboot": "The device is rebooting.",
}


async def _table(
    db: Db, viewer: Viewer, selector: str, online: str, project: str
) -> dict[str, Any]:
    error = ""
    parsed = None
    try:
        parsed = parse_selector(selector) if selector else None
    except LabelError as exc:
        error = str(exc)
    project_pk = (await projects.find(db, viewer.caller, project)).pk if project else None
    rows: list[Any] = []
    more = False
    if not error:
        page = await devices.list_devices(
            db,
            viewer.caller,
            PageParams(limit=LIST_LIMIT, after=0),
            selector=parsed,
            online={"yes": True, "no": False}.get(online),
            project_pk=project_pk,
        )
        rows, more = page.items, page.next is not None
    items = await devices.outputs(db, rows, viewer.caller)
    return {
        "devices": items,
        "more": more,
        "selector": selector,
        "online": online,
        "project": project,
        "error": error,
    }


@dataclass
class TableQuery:
    """The devices table's filters, from the query string (the page and its
    live-updated rows take the same)."""

    selector: str = ""
    online: str = ""
    project: str = ""


TableQueryDep = Annotated[TableQuery, Depends(web.query_of(TableQuery))]


@router.get("/devices")
async def device_list(request: Request, viewer: ViewerDep, db: Db, q: TableQueryDep) -> Response:
    context = await _table(db, viewer, q.selector.strip(), q.online, q.project)
    context["projects"] = await projects.visible(db, viewer.caller)
    context["query"] = request.url.query
    return web.render(request, "devices.html", context)


@router.get("/portal/fragments/devices")
async def device_rows(request: Request, viewer: ViewerDep, db: Db, q: TableQueryDep) -> Response:
    context = await _table(db, viewer, q.selector.strip(), q.online, q.project)
    return web.render(request, "fragments/device_rows.html", context)


async def _device(db: Db, viewer: Viewer, ref: str) -> dict[str, Any]:
    found = await devices.find(db, viewer.caller, ref)
    device = (await devices.outputs(db, [found], viewer.caller))[0]
    pk = found[0].project_pk
    return {
        "device": device,
        # on a lent device, a guest sees its own jobs only
        "jobs": [
            row
            for row in await jobs.for_device(db, found[0].pk)
            if viewer.can(row[0].project_pk, Permission.READ)
        ],
        "events": await events.recent(db, viewer.caller, device_id=device.id, limit=20),
        "can_manage": viewer.can(pk, Permission.MANAGE_DEVICES),
        "can_exec": viewer.can(pk, Permission.EXEC_DEVICE),
        "loans": [  # lending and revoking: portal/reservations.py
            await loans.to_out(db, loan, found[0])
            for loan in await loans.loans_of(db, found[0])
            if viewer.can(pk, Permission.READ) or loan.project_pk in viewer.caller.roles
        ],
    }


async def _device_page(
    request: Request,
    viewer: Viewer,
    db: Db,
    ref: str,
    *,
    error: str = "",
    notice: str = "",
    labels_text: str | None = None,
    metadata_text: str | None = None,
    status: int = 200,
    loan_error: str = "",
) -> Response:
    context = await _device(db, viewer, ref)
    device = context["device"]
    context.update(
        loan_error=loan_error[:200],
        error=error,
        notice=NOTICES.get(notice, ""),
        labels_text=web.format_pairs(device.labels) if labels_text is None else labels_text,
        metadata_text=json.dumps(device.metadata, indent=2, sort_keys=True)
        if metadata_text is None
        else metadata_text,
    )
    return web.render(request, "device.html", context, status=status)


@router.get("/devices/{device}")
async def device_page(
    request: Request,
    device: str,
    viewer: ViewerDep,
    db: Db,
    notice: str = "",
    loan_error: str = "",
) -> Response:
    return await _device_page(request, viewer, db, device, notice=notice, loan_error=loan_error)


@router.get("/portal/fragments/devices/{device}")
async def device_live(request: Request, device: str, viewer: ViewerDep, db: Db) -> Response:
    return web.render(request, "fragments/device_live.html", await _device(db, viewer, device))


def diff_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The RFC 7396 merge patch that turns ``old`` into ``new`` (``null`` removes)."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = diff_patch(before, value)
            if nested:
                patch[key] = nested
        elif key not in old or before != value:
            patch[key] = value
    return patch


@router.post("/devices/{device}/edit")
async def edit_device(
    request: Request, device: str, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    labels_text, metadata_text = web.field(form, "labels"), web.field(form, "metadata") or "{}"
    found, _ = await devices.find(db, viewer.caller, device)
    try:
        labels = web.parse_pairs(labels_text, "labels")
        try:
            metadata = json.loads(metadata_text)
        except json.JSONDecodeError as exc:
            raise Invalid(f"metadata is not valid JSON: {exc}", field="metadata") from None
        if not isinstance(metadata, dict):
            raise Invalid("metadata must be a JSON object", field="metadata")
        body = web.build(
            DevicePatch,
            labels=diff_patch(found.labels, labels),
            metadata=diff_patch(found.meta, metadata),
        )
        await devices.patch_from(ctx, db, viewer.caller, found.id, body)
    except ApiError as exc:
        web.refused(exc)
        return await _device_page(
            request,
            viewer,
            db,
            device,
            error=exc.message,
            labels_text=labels_text,
            metadata_text=metadata_text,
        )
    return web.redirect(f"/devices/{found.id}?notice=saved")


@router.post("/devices/{device}/actions/{action}")
async def device_action(
    request: Request,
    device: str,
    action: str,
    viewer: ViewerDep,
    form: CheckedForm,
    db: Db,
    ctx: Ctx,
) -> Response:
    found, _ = await devices.find(db, viewer.caller, device)
    if action not in action_api.COMMANDS:
        raise Invalid(f"no action {action!r}", field="action")
    body = action_api.ActionIn(confirm=web.field(form, "confirm") == "yes")
    try:
        await action_api.perform(ctx, db, viewer.caller, found.id, action, body)  # type: ignore[arg-type]
    except ApiError as exc:
        web.refused(exc)
        return await _device_page(request, viewer, db, device, error=exc.message)
    return web.redirect(f"/devices/{found.id}?notice={action}")
