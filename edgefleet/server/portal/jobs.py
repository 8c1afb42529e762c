"""Jobs: the list, the create form (devices picked by hand, or a selector with
a live preview of the devices it matches), and one job's page: a per-device
status grid that follows the fleet live, logs with follow, and an "Open"
link to every service port through the app proxy."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any, cast

from fastapi import Request
from fastapi.datastructures import FormData
from fastapi.responses import Response

from edgefleet.labels import LabelError, parse_selector
from edgefleet.server.applications import service as applications
from edgefleet.server.applications import view as app_view
from edgefleet.server.auth.roles import Permission
from edgefleet.server.deps import Ctx, Db
from edgefleet.server.devices import service as devices
from edgefleet.server.errors import ApiError, Invalid, NotFound
from edgefleet.server.jobs import service as jobs
from edgefleet.server.jobs.schemas import JobIn, JobPatch
from edgefleet.server.pagination import PageParams
from edgefleet.server.portal import web
from edgefleet.server.portal.web import CheckedForm, Viewer, ViewerDep
from edgefleet.server.projects import service as projects
from edgefleet.server.proxy import origins
from edgefleet.server.rollouts import service as rollouts
from edgefleet.server.schedules import service as schedules
from edgefleet.server.settings import ServerSettings

router = web.page_router()

PREVIEW_LIMIT = 200


async def recent_jobs(db: Db, viewer: Viewer) -> list[Any]:
    """The viewer's jobs, newest first, without their devices (the list pages)."""
    page = await jobs.listing(db, viewer.caller, PageParams(limit=1000, after=0))
    return [await jobs.output(db, j, viewer.caller, with_devices=False) for j in page.items][::-1]


async def _jobs(db: Db, viewer: Viewer) -> dict[str, Any]:
    return {"jobs": await recent_jobs(db, viewer)}


@router.get("/jobs")
async def job_list(request: Request, viewer: ViewerDep, db: Db) -> Response:
    context = await _jobs(db, viewer)
    context["can_create"] = viewer.can_any(Permission.MANAGE_APPS)
    return web.render(request, "jobs.html", context)


@router.get("/portal/fragments/jobs")
async def job_rows(request: Request, viewer: ViewerDep, db: Db) -> Response:
    return web.render(request, "fragments/job_rows.html", await _jobs(db, viewer))


async def _deployable(db: Db, viewer: Viewer) -> list[Any]:
    """Applications the viewer may deploy (developer or owner of their project)."""
    page = await applications.listing(db, viewer.caller, PageParams(limit=1000, after=0))
    visible = await projects.visible(db, viewer.caller)
    allowed = {p.pk for p in visible if viewer.can(p.pk, Permission.MANAGE_APPS)}
    return [await app_view.application(db, a) for a in page.items if a.project_pk in allowed]


async def _versions(db: Db, viewer: Viewer, application: str) -> list[str]:
    if not application:
        return []
    app = await applications.find(db, viewer.caller, application)
    return [v.version for v in reversed(await applications.versions(db, app))]


async def _form_page(
    request: Request,
    viewer: Viewer,
    db: Db,
    values: dict[str, Any],
    error: str = "",
    status: int = 200,
) -> Response:
    apps = await _deployable(db, viewer)
    if not values.get("application") and apps:
        values["application"] = apps[0].id
    rows = (await devices.list_devices(db, viewer.caller, PageParams(limit=1000, after=0))).items
    context = {
        "apps": apps,
        "versions": await _versions(db, viewer, values.get("application", "")),
        "devices": await devices.outputs(db, rows, viewer.caller),
        "values": values,
        "error": error,
        "preview": await _preview(
            db, viewer, values.get("application", ""), values.get("selector", "")
        ),
    }
    return web.render(request, "job_new.html", context, status=status)


@router.get("/jobs/new")
async def new_job(
    request: Request, viewer: ViewerDep, db: Db, application: str = "", version: str = ""
) -> Response:
    values = {"application": application, "version": version, "target": "selector", "selector": ""}
    return await _form_page(request, viewer, db, values)


@router.get("/portal/fragments/versions")
async def version_options(
    request: Request, viewer: ViewerDep, db: Db, application: str = ""
) -> Response:
    context = {"versions": await _versions(db, viewer, application), "values": {}}
    return web.render(request, "fragments/version_options.html", context)


async def _preview(db: Db, viewer: Viewer, application: str, selector: str) -> dict[str, Any]:
    selector = selector.strip()
    if not selector:
        return {"selector": "", "devices": [], "error": "", "more": False}
    try:
        parsed = parse_selector(selector)
    except LabelError as exc:
        return {"selector": selector, "devices": [], "error": str(exc), "more": False}
    project_pk = None
    if application:
        project_pk = (await applications.find(db, viewer.caller, application)).project_pk
    page = await devices.list_devices(
        db,
        viewer.caller,
        PageParams(limit=PREVIEW_LIMIT, after=0),
        selector=parsed,
        project_pk=project_pk,
    )
    return {
        "selector": selector,
        "devices": await devices.outputs(db, page.items, viewer.caller),
        "error": "",
        "more": page.next is not None,
    }


@router.get("/portal/fragments/preview")
async def preview(
    request: Request, viewer: ViewerDep, db: Db, application: str = "", selector: str = ""
) -> Response:
    context = {"preview": await _preview(db, viewer, application, selector)}
    return web.render(request, "fragments/preview.html", context)


def _time(value: str, name: str) -> datetime | None:
    """``<input type=datetime-local>`` values, read as UTC (the form says so)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name}: not a date and time: {value!r}", field=name) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _values(form: FormData) -> dict[str, Any]:
    return {
        "application": web.field(form, "application"),
        "version": web.field(form, "version"),
        "name": web.field(form, "name"),
        "target": web.field(form, "target", "selector"),
        "selector": web.field(form, "selector"),
        "devices": [d for d in form.getlist("devices") if isinstance(d, str)],
        "environment": web.field(form, "environment"),
        "start": web.field(form, "start"),
        "end": web.field(form, "end"),
    }


@router.post("/jobs")
async def create_job(
    request: Request, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    values = _values(form)
    try:
        by_devices = values["target"] == "devices"
        if by_devices and not values["devices"]:
            raise Invalid("pick at least one device, or target a selector", field="devices")
        if not by_devices and not values["selector"]:
            raise Invalid("give a selector, or pick devices", field="selector")
        body = web.build(
            JobIn,
            application=values["application"],
            version=values["version"] or None,
            name=values["name"],
            devices=values["devices"] if by_devices else None,
            selector=None if by_devices else values["selector"],
            environment=web.parse_pairs(values["environment"], "environment"),
            start=_time(values["start"], "start"),
            end=_time(values["end"], "end"),
        )
        job = await jobs.create(ctx, db, viewer.caller, body)
    except ApiError as exc:
        web.refused(exc)
        return await _form_page(request, viewer, db, values, exc.message)
    return web.redirect(f"/jobs/{job.id}")


async def _job(db: Db, viewer: Viewer, ref: str, settings: ServerSettings) -> dict[str, Any]:
    found = await jobs.find(db, viewer.caller, ref)
    out = await jobs.output(db, found, viewer.caller)
    services = (found.resolved or {}).get("services", {})
    ports = {
        name: [int(p["target"]) for p in spec.get("ports", []) if p.get("protocol", "tcp") == "tcp"]
        for name, spec in services.items()
    }
    app = await applications.find(db, viewer.caller, out.application_id)
    return {
        "job": out,
        "versions": [v.version for v in reversed(await applications.versions(db, app))],
        "ports": ports,
        # "Open" links go to the app's own origin, never a page on the portal's
        "app_url": functools.partial(origins.app_url, settings, found.id),
        "can_manage": viewer.can(found.project_pk, Permission.MANAGE_APPS),
        "active": out.state not in jobs.TERMINAL,
        "error": "",
        # a periodic job's newest runs (the runs section)
        "runs": (await schedules.recent(db, found)) if out.schedule else [],
    }


@router.get("/jobs/{job}")
async def job_page(request: Request, job: str, viewer: ViewerDep, db: Db, ctx: Ctx) -> Response:
    return web.render(request, "job.html", await _job(db, viewer, job, ctx.settings))


@router.get("/portal/fragments/jobs/{job}")
async def job_grid(request: Request, job: str, viewer: ViewerDep, db: Db, ctx: Ctx) -> Response:
    return web.render(request, "fragments/job_grid.html", await _job(db, viewer, job, ctx.settings))


async def _refused_on_job(
    request: Request, viewer: Viewer, db: Db, ctx: Ctx, job: str, exc: ApiError
) -> Response:
    """A refused change on the job's page: the page again, with the reason (a 403
    becomes the error page instead, :func:`web.refused`)."""
    web.refused(exc)
    context = await _job(db, viewer, job, ctx.settings)
    context["error"] = exc.message
    return web.render(request, "job.html", context)


@router.post("/jobs/{job}/cancel")
async def cancel_job(
    request: Request, job: str, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    found = await jobs.find(db, viewer.caller, job)
    await jobs.cancel(ctx, db, viewer.caller, found)
    return web.redirect(f"/jobs/{found.id}")


@router.post("/jobs/{job}/version")
async def roll_job(
    request: Request, job: str, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    """Roll the job to another version on every device (old runs until new is up)."""
    found = await jobs.find(db, viewer.caller, job)
    try:
        body = web.build(JobPatch, version=web.field(form, "version"))
        await jobs.patch(ctx, db, viewer.caller, found, body)
    except ApiError as exc:
        return await _refused_on_job(request, viewer, db, ctx, job, exc)
    return web.redirect(f"/jobs/{found.id}")


ROLLOUT_ACTIONS = ("pause", "resume", "abort", "override-locks")


@router.post("/jobs/{job}/rollout/{action}")
async def rollout_action(
    request: Request, job: str, action: str, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    """The rollout's buttons: pause, resume, abort, override update locks."""
    found = await jobs.find(db, viewer.caller, job)
    if action not in ROLLOUT_ACTIONS:
        raise NotFound(f"no rollout action {action!r}; one of {', '.join(ROLLOUT_ACTIONS)}")
    try:
        if action == "override-locks":
            await rollouts.override_locks(ctx, db, viewer.caller, found)
        else:
            await rollouts.control(ctx, db, viewer.caller, found, cast(rollouts.Control, action))
    except ApiError as exc:
        return await _refused_on_job(request, viewer, db, ctx, job, exc)
    return web.redirect(f"/jobs/{found.id}")
