"""``/proxy/<job>/<device>/<service>/<port>/…`` straight to the proxy.

Through FastAPI's routing a proxied request was matched against every API
route and passed through five more layers (exception handlers, the body
limit, the exit stack, parameter validation) before :func:`routes.serve_http`
ran: about half of the server's CPU for a small proxied GET (issue 16). This
middleware takes exactly the requests the proxy's routes would match and
hands them over directly, as the host router already does for app hosts.

Installed inside the host router (a path on an app's own host stays the
app's) and the metrics and freshness middleware (which still see every
request). Whatever it does not recognise (no trailing path, a port that is
not a number, a method the proxy does not serve, a mounted ``root_path``)
goes on to the routing, which answers as before. The routes stay registered
and are named in the scope, so metrics label the requests by them.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from edgefleet.server.proxy.routes import (
    METHODS,
    path_route,
    router,
    serve_http,
    serve_websocket,
)

_PATH = re.compile(r"^/proxy/([^/]+)/([^/]+)/([^/]+)/([0-9]+)/(.*)$")
"""What ``/proxy/{job}/{device}/{service}/{port:int}/{path:path}`` matches."""


class ProxyPaths:
    """ASGI middleware: path-mode proxy requests go straight to the proxy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.http_route = _route("/proxy/{job}/{device}/{service}/{port}/{path:path}", "http")
        self.websocket_route = _route(
            "/proxy/{job}/{device}/{service}/{port}/{path:path}", "websocket"
        )
        self.methods = set(METHODS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        match = _PATH.match(scope["path"]) if kind in ("http", "websocket") else None
        if match is None or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        job, device, service, port, path = match.groups()
        query = scope.get("query_string", b"").decode("latin-1")
        route = path_route(job, device, service, int(port), path, query)
        if kind == "websocket":
            scope["route"] = self.websocket_route
            await serve_websocket(WebSocket(scope, receive, send), route)
            return
        if scope["method"] not in self.methods:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.http_route
        response = await serve_http(Request(scope, receive, send), route)
        await response(scope, receive, send)


def _route(path: str, kind: str) -> BaseRoute:
    """The registered route (metrics name requests by it)."""
    websocket = kind == "websocket"
    return next(
        r
        for r in router.routes
        if getattr(r, "path", "") == path and (getattr(r, "methods", None) is None) == websocket
    )
