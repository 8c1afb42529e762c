"""The browser side of single sign-on: off to the provider, and back.

``/auth/oidc/login`` (the portal's "Sign in with your institution") and
``/auth/oidc/cli`` (opened by ``edgefleet login --sso``) begin a sign-in;
``/auth/oidc/callback`` is where the provider returns. The flow and its checks
are :mod:`edgefleet.server.auth.oidc_service`; this module only deals in
cookies, redirects and pages. The cookie binding a sign-in to its browser is
SameSite=Lax (the provider's redirect back is a cross-site navigation) and
HTTP-only, scoped to ``/auth/oidc``.
"""

from __future__ import annotations

import re
import secrets as pysecrets
from urllib.parse import urlencode, urlsplit

from fastapi import Query, Request
from fastapi.responses import RedirectResponse, Response

from edgefleet.server.auth import oidc_service
from edgefleet.server.deps import Ctx, Db
from edgefleet.server.errors import Invalid
from edgefleet.server.portal import web
from edgefleet.server.portal.auth import start_session

router = web.page_router()

FLOW_COOKIE = "edgefleet_oidc"
COOKIE_PATH = "/auth/oidc"
_TOKENISH = re.compile(r"^[A-Za-z0-9_-]+$")


def _public(ctx: Ctx) -> str:
    return ctx.settings.resolved_public_url()


def _elsewhere(request: Request, ctx: Ctx) -> Response | None:
    """Begin on the public URL's host: the provider returns there, and the flow's
    cookie must be waiting on that host."""
    public = urlsplit(_public(ctx))
    if request.url.netloc.lower() == public.netloc.lower():
        return None
    query = f"?{request.url.query}" if request.url.query else ""
    return web.redirect(f"{public.scheme}://{public.netloc}{request.url.path}{query}")


async def _begin(
    request: Request, ctx: Ctx, db: Db, next_url: str, cli: oidc_service.CliRequest | None
) -> Response:
    moved = _elsewhere(request, ctx)
    if moved is not None:
        return moved
    browser = request.cookies.get(FLOW_COOKIE, "")
    if not (32 <= len(browser) <= 64 and _TOKENISH.match(browser)):
        browser = pysecrets.token_urlsafe(32)
    oidc = oidc_service.configured_provider(ctx)
    url = await oidc_service.begin(
        db, oidc, browser=browser, public_url=_public(ctx), next_url=next_url, cli=cli
    )
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        FLOW_COOKIE,
        browser,
        max_age=oidc.config.flow_seconds,
        httponly=True,
        samesite="lax",
        secure=_public(ctx).startswith("https://"),
        path=COOKIE_PATH,
    )
    return response


@router.get("/auth/oidc/login")
async def oidc_login(request: Request, ctx: Ctx, db: Db, next: str = "/") -> Response:
    """Send the browser to the provider; it comes back signed in, to ``next`` (a
    path on this site only: anything else becomes ``/``)."""
    return await _begin(request, ctx, db, web.safe_next(next), None)


@router.get("/auth/oidc/cli")
async def oidc_cli(
    request: Request,
    ctx: Ctx,
    db: Db,
    port: int = Query(ge=0, le=65535),
    challenge: str = Query(min_length=43, max_length=43),
    state: str = Query(min_length=8, max_length=128),
) -> Response:
    """Begin a sign-in for ``edgefleet login --sso``, which listens on loopback
    ``port`` (0: it waits for the code to be pasted)."""
    if 0 < port < 1024:
        raise Invalid("port must be 0 or an unprivileged loopback port (1024-65535)", field="port")
    for name, value in (("challenge", challenge), ("state", state)):
        if not _TOKENISH.match(value):
            raise Invalid(f"{name} must be base64url characters", field=name)
    cli = oidc_service.CliRequest(port=port, state=state, challenge=challenge)
    return await _begin(request, ctx, db, "/", cli)


@router.get("/auth/oidc/callback")
async def oidc_callback(
    request: Request,
    ctx: Ctx,
    db: Db,
    code: str = Query("", max_length=2048),
    state: str = Query("", max_length=256),
    error: str = Query("", max_length=256),
    error_description: str = Query("", max_length=1024),
) -> Response:
    """The provider's answer: a session (portal) or a one-time code (CLI)."""
    oidc = oidc_service.configured_provider(ctx)
    if error:
        why = f"{error}: {error_description}" if error_description else error
        return _page(request, "Sign-in refused", f"The sign-in provider refused: {why}", 401)
    if not code or not state:
        raise Invalid("the provider sent no code or no state back", field="code")
    client = request.client.host if request.client else "unknown"
    result = await oidc_service.finish(
        db,
        oidc,
        state=state,
        code=code,
        browser=request.cookies.get(FLOW_COOKIE),
        public_url=_public(ctx),
        client=client,
    )
    if result.cli is not None and result.grant is not None:
        if result.cli.port == 0:
            return _page(
                request,
                "Almost done",
                "Paste this code into the terminal where 'edgefleet login --sso' waits. "
                "It works once, for two minutes, and only for that terminal.",
                200,
                code=result.grant,
            )
        query = urlencode({"code": result.grant, "state": result.cli.state})
        return RedirectResponse(f"http://127.0.0.1:{result.cli.port}/callback?{query}", 303)
    response: Response
    if result.groups_missing or (not result.roles and not result.user.is_admin):
        claim = oidc.config.groups_claim
        if result.groups_missing:
            message = (
                f"Signed in as {result.user.name}, but the provider sent no '{claim}' claim, "
                "so you have no project roles here. Ask your administrator to release group "
                f"membership in the '{claim}' claim (or to set --oidc-groups-claim)."
            )
        else:
            message = (
                f"Signed in as {result.user.name}, but none of your groups at the provider "
                "grants a role in any project here. Ask a project owner to add you, or your "
                "administrator to map your group (--oidc-role-map)."
            )
        response = _page(request, "No project roles", message, 200, next_url=result.next_url)
    else:
        response = web.redirect(result.next_url)
    await start_session(request, ctx, db, result.user, response)
    return response


def _page(
    request: Request,
    title: str,
    message: str,
    status: int,
    *,
    code: str | None = None,
    next_url: str | None = None,
) -> Response:
    context = {"title": title, "message": message, "code": code, "next_url": next_url}
    return web.render(request, "oidc.html", context, status=status)
