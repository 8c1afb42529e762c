"""A project's configuration page: its secrets (names and versions only, never
a value: the form takes a new value and forgets it) and its variables; and a
device's: its own variables and what it sees in the end, level by level.

Every action goes through the same services as the API
(:mod:`edgefleet.server.secrets.service`, :mod:`edgefleet.server.variables.service`),
so the page enforces the same roles: operators and owners write secrets;
operators, developers and owners write variables; members read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from edgefleet.server.auth.roles import Permission
from edgefleet.server.deps import Ctx, Db
from edgefleet.server.devices import service as devices
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import ApiError, Invalid, NotFound
from edgefleet.server.pagination import PageParams
from edgefleet.server.portal import web
from edgefleet.server.portal.web import CheckedForm, Viewer, ViewerDep
from edgefleet.server.projects import service as projects
from edgefleet.server.projects.tables import Project
from edgefleet.server.secrets import service as secrets
from edgefleet.server.secrets.schemas import SecretValue, check_name
from edgefleet.server.variables import service as variables
from edgefleet.server.variables.precedence import ScopedValue, explain
from edgefleet.server.variables.schemas import VariableIn, canonical_selector
from edgefleet.server.variables.schemas import check_name as variable_name

router = web.page_router()
MOST = PageParams(limit=1000, after=0)


@dataclass(frozen=True)
class Again:
    """A page shown again after a refused form: the service's words and what was
    typed (never a secret's value)."""

    error: str = ""
    form: dict[str, str] = field(default_factory=dict)


FRESH = Again()


async def _page(
    request: Request, viewer: Viewer, db: Db, ref: str, again: Again = FRESH
) -> Response:
    project = await projects.find(db, viewer.caller, ref)
    context = {
        "project": project,
        "secrets": (await secrets.visible(db, viewer.caller, project, MOST)).items,
        "variables": (await variables.project_rows(db, viewer.caller, project, MOST)).items,
        "can_secrets": viewer.can(project.pk, Permission.MANAGE_SECRETS),
        "can_variables": viewer.can(project.pk, Permission.MANAGE_VARIABLES),
        "error": again.error,
        "form": again.form,
    }
    return web.render(request, "config.html", context, status=200)


@router.get("/projects/{project}/config")
async def config_page(request: Request, project: str, viewer: ViewerDep, db: Db) -> Response:
    return await _page(request, viewer, db, project)


def _secret_name(value: str) -> str:
    try:
        return check_name(value)
    except ValueError as exc:
        raise Invalid(f"name: {exc}", field="name") from exc


@dataclass(frozen=True)
class Posted:
    """A form posted to a project's configuration page: on a refusal the page is
    shown again with the service's words (and what was typed, but never a
    secret's value); otherwise back to the page."""

    request: Request
    project: str
    viewer: Viewer
    form: FormData
    db: Db
    ctx: Ctx

    async def settle(
        self, act: Callable[[Project], Awaitable[object]], kept: dict[str, str] | None = None
    ) -> Response:
        found = await projects.find(self.db, self.viewer.caller, self.project)
        try:
            await act(found)
        except ApiError as exc:
            web.refused(exc)
            again = Again(exc.message, kept or {})
            return await _page(self.request, self.viewer, self.db, self.project, again)
        return web.redirect(f"/projects/{found.name}/config")


async def _posted(
    request: Request, project: str, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Posted:
    return Posted(request, project, viewer, form, db, ctx)


PostedDep = Annotated[Posted, Depends(_posted)]


@router.post("/projects/{project}/config/secrets")
async def put_secret(posted: PostedDep) -> Response:
    """Create a secret, or rotate it when the name exists (a new version)."""
    name = web.field(posted.form, "name")

    async def rotate(project: Project) -> None:
        body = web.build(SecretValue, value=posted.form.get("value") or "")
        await secrets.rotate(
            posted.ctx, posted.db, posted.viewer.caller, project, _secret_name(name), body
        )

    return await posted.settle(rotate, {"name": name})


@router.post("/projects/{project}/config/secrets/{name}/delete")
async def delete_secret(name: str, posted: PostedDep) -> Response:
    async def remove(project: Project) -> None:
        await secrets.remove(posted.ctx, posted.db, posted.viewer.caller, project, name)

    return await posted.settle(remove)


@router.post("/projects/{project}/config/variables")
async def put_variable(posted: PostedDep) -> Response:
    values = {k: web.field(posted.form, k) for k in ("name", "selector")}
    raw = posted.form.get("value")
    value = raw if isinstance(raw, str) else ""

    async def put(project: Project) -> None:
        try:
            name = variable_name(values["name"])
        except ValueError as exc:
            raise Invalid(f"name: {exc}", field="name") from exc
        body = web.build(VariableIn, value=value, selector=values["selector"] or None)
        await variables.put_project(
            posted.ctx, posted.db, posted.viewer.caller, project, name, body
        )

    return await posted.settle(put, {**values, "value": value})


@router.post("/projects/{project}/config/variables/{name}/delete")
async def delete_variable(name: str, posted: PostedDep) -> Response:
    try:
        selector = canonical_selector(web.field(posted.form, "selector"))
    except ValueError as exc:
        raise Invalid(f"selector: {exc}", field="selector") from exc

    async def delete(project: Project) -> None:
        caller = posted.viewer.caller
        await variables.delete_project(posted.ctx, posted.db, caller, project, name, selector)

    return await posted.settle(delete)


# --- one device: its own variables, and what it sees in the end ------------------------------


async def _device_variables_page(
    request: Request, viewer: Viewer, db: Db, ref: str, again: Again = FRESH
) -> Response:
    device, project = await _device(db, viewer, ref)
    scoped = [
        ScopedValue(v.name, v.value, v.selector)
        for v in (await variables.project_rows(db, viewer.caller, project, MOST)).items
    ]
    own = (await variables.device_rows(db, device, MOST)).items
    seen = explain(scoped, {v.name: v.value for v in own}, device.labels or {})
    context = {
        "device": device,
        "project": project,
        "own": own,
        "seen": sorted(seen.items()),
        "can_variables": viewer.can(device.project_pk, Permission.MANAGE_VARIABLES),
        "error": again.error,
        "form": again.form,
    }
    return web.render(request, "device_config.html", context)


async def _device(db: Db, viewer: Viewer, ref: str) -> tuple[Device, Project]:
    """A device of one of the viewer's projects (a lent one is not theirs to configure)."""
    device, _ = await devices.find(db, viewer.caller, ref)
    if not viewer.can(device.project_pk, Permission.READ):
        raise NotFound(f"device {ref!r} not found")
    return device, (await projects.names(db, {device.project_pk}))[device.project_pk]


@router.get("/devices/{device}/config")
async def device_config_page(request: Request, device: str, viewer: ViewerDep, db: Db) -> Response:
    return await _device_variables_page(request, viewer, db, device)


@router.post("/devices/{device}/config/variables")
async def put_device_variable(
    request: Request, device: str, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    found, _ = await _device(db, viewer, device)
    name = web.field(form, "name")
    raw = form.get("value")
    value = raw if isinstance(raw, str) else ""
    try:
        try:
            checked = variable_name(name)
        except ValueError as exc:
            raise Invalid(f"name: {exc}", field="name") from exc
        body = web.build(VariableIn, value=value)
        await variables.put_device(ctx, db, viewer.caller, found, checked, body)
    except ApiError as exc:
        web.refused(exc)
        again = Again(exc.message, {"name": name, "value": value})
        return await _device_variables_page(request, viewer, db, device, again)
    return web.redirect(f"/devices/{found.id}/config")


@router.post("/devices/{device}/config/variables/{name}/delete")
async def delete_device_variable(
    request: Request, device: str, name: str, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    found, _ = await _device(db, viewer, device)
    try:
        await variables.delete_device(ctx, db, viewer.caller, found, name)
    except ApiError as exc:
        web.refused(exc)
        return await _device_variables_page(request, viewer, db, device, Again(exc.message))
    return web.redirect(f"/devices/{found.id}/config")
