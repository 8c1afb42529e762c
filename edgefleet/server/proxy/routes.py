"""``/proxy/<job>/<device>/<service>/<port>/…``: authorize, open a ``tcp``
stream to the service through its device's agent, then speak HTTP or
WebSocket over it. Only members of the job's project get through, and only to
a port the service declares; their edgefleet credentials (bearer token,
session cookies) are never forwarded.

Origins (see :mod:`origins`): on the portal's host, a browser (a request with
the portal's cookie, not a bearer token) asking for a page is redirected to the
app's own host when there is one; whatever path mode still serves is
sandboxed (:func:`http.response_headers_for`). Bearer clients keep path mode
unchanged: they carry no ambient credential a page could borrow. WebSockets
authenticated by a cookie must come from the app's own origin.

An HTTP request's admission is remembered for a moment (:mod:`grants`: one
credential, one route, forgotten as soon as the user's rights change)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.requests import HTTPConnection
from starlette.responses import Response

from edgefleet.server.auth import service as auth_service
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.deps import (
    SECURE_SESSION_COOKIE,
    SESSION_COOKIE,
    bearer_token,
    session_secret,
)
from edgefleet.server.errors import (
    ApiError,
    BadGateway,
    Forbidden,
    GatewayTimeout,
    Invalid,
    Unauthorized,
    Unavailable,
)
from edgefleet.server.instances import access as instance_access
from edgefleet.server.proxy import grants as proxy_grants
from edgefleet.server.proxy import http as proxy_http
from edgefleet.server.proxy import origins
from edgefleet.server.proxy import websocket as proxy_ws
from edgefleet.server.remote import targets
from edgefleet.server.remote.targets import WorkloadTarget
from edgefleet.wire.mux import Stream

router = APIRouter(include_in_schema=False)

APP_COOKIE = "edgefleet_app"
STRIP_COOKIES = {SESSION_COOKIE, SECURE_SESSION_COOKIE, APP_COOKIE}
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(frozen=True)
class Route:
    job: str
    device: str
    service: str
    port: int
    path: str  # with leading slash and query string
    prefix: str  # "" for host-based routing

    @property
    def where(self) -> tuple[str, str, str, int, bool]:
        """What a grant covers: the app, and whether on the portal's origin."""
        return (self.job, self.device, self.service, self.port, self.portal_origin)

    @property
    def app_scope(self) -> str:
        return f"app:{self.job}-{self.device}-{self.service}-{self.port}"

    @property
    def portal_origin(self) -> bool:
        """Path mode is served on the portal's own host."""
        return bool(self.prefix)


def credentials(conn: HTTPConnection, route: Route) -> list[tuple[str, str]]:
    """(how, secret) of every credential the request offers, in the order they are
    tried: a bearer token alone, else the portal session cookie (path mode),
    then the app-host cookie minted for exactly this route."""
    token = bearer_token_from(dict(conn.headers))
    if token is not None:
        return [("bearer", token)]
    found = []
    secret = session_secret(conn) if route.portal_origin else None
    if secret:
        found.append(("session", secret))
    secret = conn.cookies.get(APP_COOKIE)
    if secret:
        found.append(("app", secret))
    return found


async def authenticate(
    ctx: ServerContext, conn: HTTPConnection, route: Route
) -> tuple[Caller, bool, tuple[str, str]]:
    """(caller, used_bearer, the credential that was accepted)."""
    async with ctx.session() as db:
        for how, secret in credentials(conn, route):
            if how == "bearer":
                return await auth_service.authenticate(db, secret), True, (how, secret)
            kind = "session" if how == "session" else route.app_scope
            caller = await auth_service.authenticate_session(db, secret, kind=kind)
            if caller is not None:
                return caller, False, (how, secret)
    raise Unauthorized("sign in to the portal or send 'Authorization: Bearer <token>'")


async def admit(ctx: ServerContext, conn: HTTPConnection, route: Route) -> proxy_grants.Grant:
    """:func:`authenticate` then :func:`authorize`, or the grant that remembers
    their answer for the request's first credential. Raises Unauthorized
    (no valid credential) or what :func:`authorize` raises."""
    grants: proxy_grants.Grants = conn.app.state.proxy_grants
    offered = credentials(conn, route)
    key = grants.key(*offered[0], route.where) if offered else None
    grant = grants.get(key) if key is not None else None
    if grant is not None:
        return grant
    judged_at = grants.changes
    caller, used_bearer, accepted = await authenticate(ctx, conn, route)
    target = await authorize(ctx, caller, route)
    if key is None or accepted != offered[0]:  # remembered only as a fresh check finds it
        return proxy_grants.Grant(caller, used_bearer, target)
    async with ctx.session() as db:
        expires = await proxy_grants.token_expiry(db, accepted[1])
    return grants.put(key, proxy_grants.Grant(caller, used_bearer, target), expires, judged_at)


def bearer_token_from(headers: dict[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def authorize(ctx: ServerContext, caller: Caller, route: Route) -> WorkloadTarget:
    """A member of the job's project (for a personal instance: its owner or a user it
    is shared with), and a port its service declares (404 otherwise)."""
    if not 0 < route.port < 65536:
        raise Invalid(f"port {route.port} is out of range: ports are 1 to 65535", field="port")
    async with ctx.session() as db:
        target = await targets.service_port(
            db, caller, route.job, route.device, route.service, route.port, Permission.READ
        )
        # a personal instance opens only for its owner and those it is shared with
        await instance_access.check_proxy(db, caller, target.job)
        return target


async def open_service(
    ctx: ServerContext,
    target: WorkloadTarget,
    route: Route,
    first: Callable[[Stream], Awaitable[None]] | None = None,
) -> Stream:
    """A ``tcp`` stream to the service's port; ``first`` as in ``hub.open_stream``."""
    header = {
        "kind": "tcp",
        "target": "workload",
        "job": target.job.id,
        "service": route.service,
        "port": route.port,
    }
    try:
        return await ctx.hub.open_stream(target.device.id, header, first=first)
    except Unavailable as exc:
        if "refused" in exc.message:
            raise BadGateway(exc.message) from None
        if "timed out" in exc.message:
            raise GatewayTimeout(exc.message) from None
        raise


def _error(exc: ApiError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def own_origin(ctx: ServerContext, target: WorkloadTarget, route: Route) -> str | None:
    """Where a browser on the portal's host is sent for this app (None: stay, sandboxed)."""
    return origins.app_origin(
        ctx.settings, target.job.id, target.device.id, route.service, route.port
    )


async def serve_http(request: Request, route: Route) -> Response:
    ctx: ServerContext = request.app.state.ctx
    try:
        grant = await admit(ctx, request, route)
    except Unauthorized as exc:
        return unauthenticated(request, route, exc)
    except ApiError as exc:
        return _error(exc)
    try:
        if route.portal_origin and not grant.used_bearer and request.method in ("GET", "HEAD"):
            origin = own_origin(ctx, grant.target, route)
            if origin is not None:
                return RedirectResponse(origin + route.path, status_code=302)
        exchange = proxy_http.Exchange(
            request,
            route.path,
            route.prefix,
            strip_cookies=STRIP_COOKIES,
            strip_authorization=grant.used_bearer,
            portal_origin=route.portal_origin,
        )
        stream = await open_service(ctx, grant.target, route, exchange.start)
        return await exchange.relay(stream)
    except ApiError as exc:
        return _error(exc)


def unauthenticated(request: Request, route: Route, exc: ApiError) -> Response:
    """Browsers are sent to sign in; scripts get a 401."""
    wants_html = "text/html" in request.headers.get("accept", "") and request.method == "GET"
    if not wants_html:
        return _error(exc)
    if route.prefix:
        return RedirectResponse(f"/login?next={_quote(route.prefix + route.path)}", status_code=302)
    ctx: ServerContext = request.app.state.ctx
    host = request.headers.get("host", "")
    base = ctx.settings.resolved_public_url()
    return RedirectResponse(
        f"{base}/proxy-auth?host={_quote(host)}&next={_quote(route.path)}", status_code=302
    )


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def check_origin(websocket: WebSocket, used_bearer: bool) -> None:
    """A WebSocket authenticated by a cookie may come only from a page of the
    origin it talks to (browsers send cookies with cross-site handshakes; only
    ``Origin`` tells); without an ``Origin`` (not a browser) a bearer token is needed."""
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host", "")
    if origin is None:
        if not used_bearer:
            raise Forbidden(
                "a WebSocket without an Origin header needs 'Authorization: Bearer <token>'"
            )
        return
    if not origins.same_origin(origin, host):
        raise Forbidden(
            f"cross-origin WebSocket refused: a page of {origin} may not open this app's WebSockets"
        )


async def refuse_websocket(websocket: WebSocket, exc: ApiError) -> None:
    """Refuse the handshake with the HTTP status and the error body where the
    server can (the ASGI denial response), else a bare 403."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(_error(exc))
    else:
        await websocket.close(1008, exc.message[:120])


async def serve_websocket(websocket: WebSocket, route: Route) -> None:
    ctx: ServerContext = websocket.app.state.ctx
    try:
        caller, used_bearer, _ = await authenticate(ctx, websocket, route)
        check_origin(websocket, used_bearer)
        target = await authorize(ctx, caller, route)
        release = ctx.limits.claim_stream(caller.user_id, target.device.id)
    except ApiError as exc:
        await refuse_websocket(websocket, exc)
        return
    try:
        try:
            stream = await open_service(ctx, target, route)
        except ApiError as exc:
            await refuse_websocket(websocket, exc)
            return
        headers = proxy_http.request_headers_ws(
            websocket, route.prefix, strip_cookies=STRIP_COOKIES, strip_authorization=used_bearer
        )
        host = websocket.headers.get("host", "localhost")
        await proxy_ws.forward(websocket, stream, route.path, host, headers)
    finally:
        release()


def path_route(job: str, device: str, service: str, port: int, path: str, query: str) -> Route:
    prefix = f"/proxy/{job}/{device}/{service}/{port}"
    target = "/" + path + (f"?{query}" if query else "")
    return Route(job, device, service, port, target, prefix)


@router.api_route("/proxy/{job}/{device}/{service}/{port}", methods=METHODS)
async def proxy_root(request: Request, job: str, device: str, service: str, port: int) -> Response:
    query = request.url.query
    return RedirectResponse(
        f"/proxy/{job}/{device}/{service}/{port}/" + (f"?{query}" if query else ""), status_code=307
    )


@router.api_route("/proxy/{job}/{device}/{service}/{port}/{path:path}", methods=METHODS)
async def proxy_path(
    request: Request, job: str, device: str, service: str, port: int, path: str
) -> Response:
    return await serve_http(
        request, path_route(job, device, service, port, path, request.url.query)
    )


@router.websocket("/proxy/{job}/{device}/{service}/{port}/{path:path}")
async def proxy_path_ws(
    websocket: WebSocket, job: str, device: str, service: str, port: int, path: str
) -> None:
    await serve_websocket(
        websocket, path_route(job, device, service, port, path, websocket.url.query)
    )


__all__ = ["bearer_token", "router"]
