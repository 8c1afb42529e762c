"""``/proxy/<job>/<device>/<service>/<port>/…``: authorize, open a ``tcp``
stream to the service through its device's agent, then speak HTTP or
WebSocket over it. Only members of the job's project get through; their
edgefleet credentials (bearer token, session cookies) are never forwarded."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from edgefleet.server.auth import service as auth_service
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.deps import SESSION_COOKIE, bearer_token
from edgefleet.server.errors import (
    ApiError,
    BadGateway,
    GatewayTimeout,
    Invalid,
    Unauthorized,
    Unavailable,
)
from edgefleet.server.proxy import http as proxy_http
from edgefleet.server.proxy import websocket as proxy_ws
from edgefleet.server.remote import targets
from edgefleet.wire.mux import Stream

router = APIRouter(include_in_schema=False)

APP_COOKIE = "edgefleet_app"
STRIP_COOKIES = {SESSION_COOKIE, APP_COOKIE}
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
    def app_scope(self) -> str:
        return f"app:{self.job}-{self.device}-{self.service}-{self.port}"


async def authenticate(
    ctx: ServerContext, headers: dict[str, str], cookies: dict[str, str], route: Route
) -> tuple[Caller, bool]:
    """(caller, used_bearer). Bearer token, portal session cookie, or the
    app-host cookie minted for exactly this route."""
    async with ctx.session() as db:
        token = bearer_token_from(headers)
        if token is not None:
            return await auth_service.authenticate(db, token), True
        for name in (SESSION_COOKIE, APP_COOKIE):
            secret = cookies.get(name)
            if secret:
                caller = await auth_service.authenticate_session(
                    db, secret, kind=route.app_scope if name == APP_COOKIE else "session"
                )
                if caller is not None:
                    return caller, False
    raise Unauthorized("sign in to the portal or send 'Authorization: Bearer <token>'")


def bearer_token_from(headers: dict[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def open_service(ctx: ServerContext, caller: Caller, route: Route) -> Stream:
    async with ctx.session() as db:
        target = await targets.workload(
            db, caller, route.job, route.device, route.service, Permission.READ
        )
    if not 0 < route.port < 65536:
        raise Invalid(f"invalid port {route.port}", field="port")
    header = {
        "kind": "tcp",
        "target": "workload",
        "job": target.job.id,
        "service": route.service,
        "port": route.port,
    }
    try:
        return await ctx.hub.open_stream(target.device.id, header)
    except Unavailable as exc:
        if "refused" in exc.message:
            raise BadGateway(exc.message) from None
        if "timed out" in exc.message:
            raise GatewayTimeout(exc.message) from None
        raise


def _error(exc: ApiError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def serve_http(request: Request, route: Route) -> Response:
    ctx: ServerContext = request.app.state.ctx
    try:
        caller, used_bearer = await authenticate(
            ctx, dict(request.headers), dict(request.cookies), route
        )
    except Unauthorized as exc:
        return unauthenticated(request, route, exc)
    try:
        stream = await open_service(ctx, caller, route)
    except ApiError as exc:
        return _error(exc)
    try:
        return await proxy_http.forward(
            request,
            stream,
            route.path,
            route.prefix,
            strip_cookies=STRIP_COOKIES,
            strip_authorization=used_bearer,
        )
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


async def serve_websocket(websocket: WebSocket, route: Route) -> None:
    ctx: ServerContext = websocket.app.state.ctx
    try:
        caller, used_bearer = await authenticate(
            ctx, dict(websocket.headers), dict(websocket.cookies), route
        )
        stream = await open_service(ctx, caller, route)
    except ApiError as exc:
        await websocket.close(4000 + exc.status, exc.message[:100])
        return
    headers = proxy_http.request_headers_ws(
        websocket, route.prefix, strip_cookies=STRIP_COOKIES, strip_authorization=used_bearer
    )
    host = websocket.headers.get("host", "localhost")
    await proxy_ws.forward(websocket, stream, route.path, host, headers)


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
