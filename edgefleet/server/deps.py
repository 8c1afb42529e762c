"""Typed dependency aliases, so route signatures read like a spec:
``async def show(device: str, caller: CallerDep, db: Db) -> DeviceOut``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from edgefleet.server.auth import secrets
from edgefleet.server.auth import service as auth_service
from edgefleet.server.auth.caller import Caller
from edgefleet.server.context import ServerContext
from edgefleet.server.errors import Forbidden, Unauthorized
from edgefleet.server.pagination import PageParams, page_params

SESSION_COOKIE = "edgefleet_session"
SECURE_SESSION_COOKIE = "__Host-edgefleet_session"
"""Over https the portal's cookie carries the ``__Host-`` prefix: the browser then
keeps it host-only, Secure and Path=/, so no other host (an app on a sibling
name) can set a cookie of that name that the portal would read."""
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_ctx(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServerContext, Depends(get_ctx)]


async def get_db(ctx: Ctx) -> AsyncIterator[AsyncSession]:
    async with ctx.sessions() as session:
        yield session


Db = Annotated[AsyncSession, Depends(get_db)]


def session_cookie_name(secure: bool) -> str:
    """The portal session cookie's name on an https (``__Host-``) or http origin."""
    return SECURE_SESSION_COOKIE if secure else SESSION_COOKIE


def is_secure(conn: HTTPConnection) -> bool:
    return conn.url.scheme in ("https", "wss")


def session_secret(conn: HTTPConnection) -> str | None:
    """The portal session from the cookie of the right name. Over https only the
    ``__Host-`` one counts: a plain-named cookie there may come from a sibling host."""
    return conn.cookies.get(session_cookie_name(is_secure(conn))) or None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def current_caller(request: Request, db: Db) -> Caller:
    token = bearer_token(request)
    if token is not None:
        return await auth_service.authenticate(db, token)
    session_id = session_secret(request)
    if session_id:
        caller = await auth_service.authenticate_session(db, session_id)
        if caller is not None:
            if request.method not in SAFE_METHODS:
                sent = request.headers.get(CSRF_HEADER, "")
                if not secrets.same(sent, secrets.csrf_token(session_id)):
                    raise Forbidden(
                        f"cookie-authenticated requests that change things need the {CSRF_HEADER} header"
                    )
            return caller
    raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'")


CallerDep = Annotated[Caller, Depends(current_caller)]
Paging = Annotated[PageParams, Depends(page_params)]


def same_origin(websocket: WebSocket) -> bool:
    """Browsers send cookies with cross-site WebSocket handshakes (SameSite does not
    cover another subdomain, like an apps domain); the Origin header tells."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser
    from urllib.parse import urlsplit

    return urlsplit(origin).netloc.lower() == websocket.headers.get("host", "").lower()


async def websocket_caller(websocket: WebSocket, db: AsyncSession) -> Caller | None:
    """Authenticate a WebSocket (bearer header or portal cookie). On failure the
    socket is accepted, told why, and closed with 4401; returns None."""
    import json

    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    message = "authentication required: send 'Authorization: Bearer <token>'"
    try:
        if scheme.lower() == "bearer" and value.strip():
            return await auth_service.authenticate(db, value.strip())
        session_id = session_secret(websocket)
        if session_id:
            caller = await auth_service.authenticate_session(db, session_id)
            if caller is not None:
                if same_origin(websocket):
                    return caller
                message = "cross-origin WebSocket refused: open it from this server's portal"
    except Unauthorized as exc:
        message = exc.message
    await websocket.accept()
    await websocket.send_bytes(b"\x03" + json.dumps({"error": message, "status": 401}).encode())
    await websocket.close(4401, message[:100])
    return None
