"""Host-based routing: ``<job>-<device>-<service>-<port>.<apps-domain>``.

Apps that use absolute paths (``/static/app.js``) break under a path prefix;
on their own host name they work unchanged. Job and device ids contain no
dashes, the port is the last label part, so the service name in between may
contain dashes.

Browsers authenticate on an app host with a cookie minted for exactly that
host (DIT4C's auth helper): an unauthenticated visit is sent to the main
host's ``/proxy-auth``, which checks the portal session and redirects back to
``/__edgefleet/auth`` on the app host with a short-lived app-scoped token,
which becomes a host-only, HttpOnly cookie. The token is good for that one
route and nothing else, and is stripped before the request reaches the app.

With no ``--apps-domain`` and a server reached on loopback, the domain is
``localhost`` (``settings.resolved_apps_domain``): ``make run`` gives every app
an origin of its own with no DNS set-up.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from edgefleet.server.auth import service as auth_service
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.deps import bearer_token, session_secret
from edgefleet.server.errors import ApiError, NotFound, Unauthorized
from edgefleet.server.instances import access as instance_access
from edgefleet.server.proxy.routes import APP_COOKIE, Route, serve_http, serve_websocket
from edgefleet.server.remote import targets

_LABEL = re.compile(
    r"^(?P<job>[a-z0-9]+)-(?P<device>[a-z0-9]+)-(?P<service>[A-Za-z0-9._-]+)-(?P<port>\d{1,5})$"
)
AUTH_PATH = "/__edgefleet/auth"

router = APIRouter(include_in_schema=False)


def parse_host(host: str, domain: str) -> Route | None:
    name = host.split(":", 1)[0].lower().rstrip(".")
    suffix = "." + domain.lower().strip(".")
    if not name.endswith(suffix):
        return None
    match = _LABEL.match(name[: -len(suffix)])
    if match is None:
        return None
    return Route(match["job"], match["device"], match["service"], int(match["port"]), "/", "")


def app_route(scope: Scope, domain: str) -> Route | None:
    """The app a request's Host header names (the last Host, as a dict of the
    headers would give), or ``None`` for a host of the server's own. Read in a
    function of its own so no copy of the headers stays in a caller's frame,
    which lives as long as the request: months for an agent's WebSocket (issue 16)."""
    host = ""
    for key, value in scope.get("headers", []):
        if key.lower() == b"host":
            host = value.decode("latin-1")
    return parse_host(host, domain)


class HostRouter:
    """ASGI middleware: requests for an app host go to the proxy, others on."""

    def __init__(self, app: ASGIApp, domain: str) -> None:
        self.app = app
        self.domain = domain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        route = app_route(scope, self.domain)
        if route is None:
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope.get("path", "/") or "/"
        route = Route(
            route.job,
            route.device,
            route.service,
            route.port,
            path + (f"?{query}" if query else ""),
            "",
        )
        if scope["type"] == "websocket":
            websocket = WebSocket(scope, receive, send)
            await serve_websocket(websocket, route)
            return
        request = Request(scope, receive, send)
        if path == AUTH_PATH:
            response = await _set_cookie(request, route)
        else:
            response = await serve_http(request, route)
        await response(scope, receive, send)


async def _set_cookie(request: Request, route: Route) -> Response:
    token = request.query_params.get("token", "")
    next_path = request.query_params.get("next", "/")
    if not next_path.startswith("/") or next_path.startswith("//"):
        next_path = "/"
    response = RedirectResponse(next_path, status_code=302)
    response.set_cookie(
        APP_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=int(auth_service.SESSION_TTL.total_seconds()),
    )
    return response


@router.get("/proxy-auth")
async def proxy_auth(request: Request) -> Response:
    """On the main host: turn a portal session into a cookie for one app host."""
    ctx: ServerContext = request.app.state.ctx
    host = request.query_params.get("host", "")
    next_path = request.query_params.get("next", "/")
    domain = ctx.settings.resolved_apps_domain()
    route = parse_host(host, domain) if domain else None
    if route is None:
        return JSONResponse(NotFound("not an app host of this server").body(), status_code=404)
    async with ctx.session() as db:
        caller = None
        token = bearer_token(request)
        if token is not None:
            caller = await auth_service.authenticate(db, token)
        elif secret := session_secret(request):
            caller = await auth_service.authenticate_session(db, secret)
        if caller is None:
            here = f"/proxy-auth?host={quote(host, safe='')}&next={quote(next_path, safe='')}"
            if "text/html" in request.headers.get("accept", ""):
                return RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=302)
            return JSONResponse(Unauthorized("sign in first").body(), status_code=401)
        try:
            target = await targets.service_port(
                db, caller, route.job, route.device, route.service, route.port, Permission.READ
            )
            await instance_access.check_proxy(db, caller, target.job)  # personal instances
        except ApiError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        user = await auth_service.find_user(db, caller.user_id)
        secret = await auth_service.create_session(db, user, kind=route.app_scope)
    scheme = request.url.scheme
    return RedirectResponse(
        f"{scheme}://{host}{AUTH_PATH}?token={quote(secret, safe='')}&next={quote(next_path, safe='')}",
        status_code=302,
    )
