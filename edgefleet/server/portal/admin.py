"""Provisioning keys (shown once, with the exact ``edgefleet agent …`` command),
API tokens (shown once), projects and their members."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from edgefleet.server.auth import accounts
from edgefleet.server.auth import service as users
from edgefleet.server.auth.roles import Permission, Role
from edgefleet.server.auth.schemas import TokenIn
from edgefleet.server.deps import Ctx, Db
from edgefleet.server.errors import ApiError, Invalid
from edgefleet.server.keys import service as keys
from edgefleet.server.keys.schemas import KeyIn
from edgefleet.server.pagination import PageParams
from edgefleet.server.portal import web
from edgefleet.server.portal.web import CheckedForm, Viewer, ViewerDep
from edgefleet.server.projects import service as projects
from edgefleet.server.projects.schemas import MemberIn, ProjectIn, RoleIn

router = web.page_router()
ALL = PageParams(limit=1000, after=0)


def _https(request: Request, ctx: Ctx) -> bool:
    return request.url.scheme == "https" or ctx.settings.tls_cert is not None


def _seconds(value: str, name: str, unit: str, per: int) -> int | None:
    """A duration typed as a number of ``unit`` (hours, days), in seconds."""
    if not value:
        return None
    try:
        amount = float(value)
    except ValueError:
        raise Invalid(f"{name}: a number of {unit}, not {value!r}", field=name) from None
    if amount <= 0:
        raise Invalid(f"{name} must be more than 0 {unit}", field=name)
    return max(1, int(amount * per))


# --- provisioning keys ----------------------------------------------------------------------


async def _keys_page(
    request: Request, viewer: Viewer, db: Db, status: int = 200, **extra: Any
) -> Response:
    visible = await projects.visible(db, viewer.caller)
    listed = (await keys.listing(db, viewer.caller, ALL)).items
    context: dict[str, Any] = {
        "keys": [await keys.key_out(db, k) for k in reversed(listed)],
        "projects": [p for p in visible if viewer.can(p.pk, Permission.MANAGE_KEYS)],
        "created": None,
        "error": "",
        "form": {},
    }
    context.update(extra)
    return web.render(request, "keys.html", context, status=status)


@router.get("/keys")
async def key_list(request: Request, viewer: ViewerDep, db: Db) -> Response:
    created = web.read_once(request)
    return web.forget_once(await _keys_page(request, viewer, db, created=created), "/keys")


@router.post("/keys")
async def create_key(
    request: Request, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    values = {
        k: web.field(form, k) for k in ("project", "name", "labels", "expires_in", "max_uses")
    }
    try:
        body = web.build(
            KeyIn,
            project=values["project"] or "default",
            name=values["name"],
            labels=web.parse_pairs(values["labels"], "labels"),
            expires_in=_seconds(values["expires_in"], "expires in", "hours", 3600),
            max_uses=values["max_uses"] or None,
        )
        created = await keys.create_from(ctx, db, viewer.caller, body)
    except ApiError as exc:
        web.refused(exc)
        return await _keys_page(request, viewer, db, error=exc.message, form=values)
    return web.show_once("/keys", created.model_dump(mode="json"), _https(request, ctx))


@router.post("/keys/{key_id}/revoke")
async def revoke_key(key_id: str, viewer: ViewerDep, form: CheckedForm, db: Db) -> Response:
    await keys.revoke(db, viewer.caller, await keys.find(db, viewer.caller, key_id))
    return web.redirect("/keys")


# --- API tokens ------------------------------------------------------------------------------


async def _tokens_page(
    request: Request, viewer: Viewer, db: Db, status: int = 200, **extra: Any
) -> Response:
    context: dict[str, Any] = {
        "tokens": list(reversed(await accounts.tokens(db, viewer.caller))),
        "created": None,
        "error": "",
        "form": {},
    }
    context.update(extra)
    return web.render(request, "tokens.html", context, status=status)


@router.get("/tokens")
async def token_list(request: Request, viewer: ViewerDep, db: Db) -> Response:
    created = web.read_once(request)
    return web.forget_once(await _tokens_page(request, viewer, db, created=created), "/tokens")


@router.post("/tokens")
async def create_token(
    request: Request, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx
) -> Response:
    values = {k: web.field(form, k) for k in ("name", "expires_in")}
    try:
        seconds = _seconds(values["expires_in"], "expires in", "days", 86400)
        body = web.build(TokenIn, name=values["name"], expires_in=seconds)
        created = await accounts.create_token(db, viewer.caller, body)
    except ApiError as exc:
        web.refused(exc)
        return await _tokens_page(request, viewer, db, error=exc.message, form=values)
    return web.show_once("/tokens", created.model_dump(mode="json"), _https(request, ctx))


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(token_id: str, viewer: ViewerDep, form: CheckedForm, db: Db) -> Response:
    await users.revoke_token(db, viewer.caller, token_id)
    return web.redirect("/tokens")


# --- projects and members ---------------------------------------------------------------------


async def _projects_page(
    request: Request, viewer: Viewer, db: Db, error: str = "", form: dict[str, str] | None = None
) -> Response:
    found = await projects.visible(db, viewer.caller)
    listed = [await projects.project_out(db, viewer.caller, p) for p in found]
    context = {"projects": listed, "error": error, "form": form or {}}
    return web.render(request, "projects.html", context)


@router.get("/projects")
async def project_list(request: Request, viewer: ViewerDep, db: Db) -> Response:
    return await _projects_page(request, viewer, db)


@router.post("/projects")
async def create_project(
    request: Request, viewer: ViewerDep, form: CheckedForm, db: Db
) -> Response:
    values = {k: web.field(form, k) for k in ("name", "description")}
    try:
        body = web.build(ProjectIn, **values)
        created = await projects.create(db, viewer.caller, body.name, body.description)
    except ApiError as exc:
        web.refused(exc)
        return await _projects_page(request, viewer, db, exc.message, values)
    return web.redirect(f"/projects/{created.name}")


async def _project_page(
    request: Request, viewer: Viewer, db: Db, ref: str, error: str = "", status: int = 200
) -> Response:
    found = await projects.find(db, viewer.caller, ref)
    context = {
        "project": await projects.project_out(db, viewer.caller, found),
        "can_manage": viewer.can(found.pk, Permission.MANAGE_MEMBERS),
        "roles": [r.value for r in Role],
        "error": error,
    }
    return web.render(request, "project.html", context, status=status)


@router.get("/projects/{project}")
async def project_page(request: Request, project: str, viewer: ViewerDep, db: Db) -> Response:
    return await _project_page(request, viewer, db, project)


@router.post("/projects/{project}/members")
async def add_member(
    request: Request, project: str, viewer: ViewerDep, form: CheckedForm, db: Db
) -> Response:
    found = await projects.find(db, viewer.caller, project)
    try:
        body = web.build(MemberIn, user=web.field(form, "user"), role=web.field(form, "role"))
        user = await users.find_user(db, body.user)
        await projects.set_member(db, viewer.caller, found, user, body.role)
    except ApiError as exc:
        web.refused(exc)
        return await _project_page(request, viewer, db, project, exc.message)
    return web.redirect(f"/projects/{found.name}")


@router.post("/projects/{project}/members/{user}")
async def change_member(
    request: Request, project: str, user: str, viewer: ViewerDep, form: CheckedForm, db: Db
) -> Response:
    found = await projects.find(db, viewer.caller, project)
    try:
        if web.field(form, "action") == "remove":
            await projects.remove_member(db, viewer.caller, found, await users.find_user(db, user))
        else:
            body = web.build(RoleIn, role=web.field(form, "role"))
            member = await users.find_user(db, user)
            await projects.set_member(db, viewer.caller, found, member, body.role)
    except ApiError as exc:
        web.refused(exc)
        return await _project_page(request, viewer, db, project, exc.message)
    return web.redirect(f"/projects/{found.name}")
