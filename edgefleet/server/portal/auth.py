"""Sign in (password or API token) and sign out.

A portal session is an API token of kind ``session`` (12 h) held in an
HTTP-only, SameSite=Lax cookie; signing out revokes it. Signing in with an
API token makes a fresh session for its user: the token itself never sits in
a cookie. The sign-in form has no session yet, so it carries a double-submit
token instead: a random value in a short-lived SameSite=Strict cookie and in
the form, which a foreign page cannot read.
"""

from __future__ import annotations

import secrets as pysecrets

from fastapi import Request
from fastapi.responses import Response

from edgefleet.server.auth import secrets
from edgefleet.server.auth import service as auth_service
from edgefleet.server.auth.tables import User
from edgefleet.server.deps import Ctx, Db, is_secure, session_cookie_name, session_secret
from edgefleet.server.errors import TooManyRequests, Unauthorized
from edgefleet.server.portal import web
from edgefleet.server.portal.web import CheckedForm, ViewerDep

router = web.page_router()

LOGIN_COOKIE = "edgefleet_login"


def _secure(request: Request, ctx: Ctx) -> bool:
    return request.url.scheme == "https" or ctx.settings.tls_cert is not None


def _login_page(
    request: Request, ctx: Ctx, next_url: str, error: str = "", name: str = "", status: int = 200
) -> Response:
    token = pysecrets.token_urlsafe(24)
    sso = ctx.oidc is not None  # single sign-on: a button to the provider (portal/oidc.py)
    response = web.render(
        request,
        "login.html",
        {"next": next_url, "error": error, "login_csrf": token, "username": name, "sso": sso},
        status=status,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=_secure(request, ctx),
        path="/login",
    )
    return response


@router.get("/login")
async def login_form(request: Request, ctx: Ctx, db: Db, next: str = "/") -> Response:
    secret = session_secret(request)
    if secret and await auth_service.authenticate_session(db, secret) is not None:
        return web.redirect(web.safe_next(next))
    return _login_page(request, ctx, web.safe_next(next))


@router.post("/login")
async def login(request: Request, ctx: Ctx, db: Db) -> Response:
    form = await request.form()
    next_url = web.safe_next(web.field(form, "next"))
    name = web.field(form, "username")
    sent, expected = web.field(form, "csrf"), request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not secrets.same(sent, expected):
        return _login_page(
            request, ctx, next_url, "The sign-in form expired: please try again.", name
        )
    user: User
    try:
        if web.field(form, "method") == "token":
            caller = await auth_service.authenticate(db, web.field(form, "token"))
            user = await auth_service.find_user(db, caller.user_id)
        else:
            client = request.client.host if request.client else "unknown"
            password = web.field(form, "password")
            user = await auth_service.check_password(db, ctx.limits, name, password, client)
    except Unauthorized as exc:
        return _login_page(request, ctx, next_url, exc.message, name)
    except TooManyRequests as exc:  # the page, with the seconds to wait, and 429
        page = _login_page(request, ctx, next_url, exc.message, name, status=429)
        page.headers["Retry-After"] = str(exc.extra["retry_after"])
        return page
    response = web.redirect(next_url)
    await start_session(request, ctx, db, user, response)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


async def start_session(request: Request, ctx: Ctx, db: Db, user: User, response: Response) -> None:
    """Open a portal session for ``user`` on ``response``: every way of signing in
    (password, token, single sign-on) ends here, so all sessions are alike."""
    session = await auth_service.create_session(db, user)
    response.set_cookie(
        session_cookie_name(_secure(request, ctx)),
        session,
        max_age=int(auth_service.SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_secure(request, ctx),
        path="/",
    )


@router.post("/logout")
async def logout(request: Request, viewer: ViewerDep, form: CheckedForm, db: Db) -> Response:
    await auth_service.revoke_secret(db, viewer.session)
    response = web.redirect("/login")
    response.delete_cookie(
        session_cookie_name(is_secure(request)), path="/", secure=is_secure(request)
    )
    return response
