"""The agents' lane: an agent's WebSocket is served before the middleware stack.

A request keeps its whole chain of calls suspended for as long as it lasts,
and an agent's lasts for months. Through the stack that chain is FastAPI's
and Starlette's entry points, the error, telemetry and body-limit
middlewares, the metrics, the rights guard, the host router and the proxy
paths: eleven frames, with the metrics' closure, about 3.5 KB per connected
device (issue 16, measured with tracemalloc at 1,000 devices). None of them
does anything for this path:

- the error handlers, telemetry and body limits act on HTTP requests only;
- the rights guard leaves ``/api/v1/agent/`` alone (device credentials are
  the gateway's business, and a deleted device's socket is closed by it);
- the proxy paths serve ``/proxy/`` only;
- the metrics' open-WebSocket gauge is kept by :func:`agent_connect` itself;
- the host router: an app's own host keeps every path, this one included,
  so the lane first asks :func:`~edgefleet.server.proxy.hosts.app_route`.

The route stays registered, so OpenAPI lists it.

uvicorn would wrap the app in its proxy-header middleware (the client's
address and scheme from a trusted proxy's ``X-Forwarded-*``), one more frame
held per connection; :class:`FleetApp` runs that same middleware first
instead, for every request, and uvicorn is told not to wrap it.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from edgefleet.server.gateway.endpoint import AGENT_PATH, agent_connect
from edgefleet.server.proxy.hosts import app_route


class FleetApp(FastAPI):
    """The server's ASGI app: FastAPI, with the agents' lane in front."""

    apps_domain: str | None = None
    """Where apps get their own hosts (``--apps-domain``); ``None``: no app hosts."""
    forwarded: ASGIApp | None = None
    """uvicorn's rewrite of the client's address and scheme from a trusted
    proxy's headers (``--forwarded-allow-ips``), run before anything else."""

    def believe_proxies(self, allow_ips: str) -> None:
        """Take the client's address and scheme from the ``X-Forwarded-*``
        headers of these proxies (uvicorn's ``forwarded_allow_ips`` syntax)."""
        middleware = ProxyHeadersMiddleware(cast(Any, _rewritten), trusted_hosts=allow_ips)
        self.forwarded = cast(ASGIApp, middleware)  # uvicorn's ASGI types are Starlette's

    def takes(self, scope: Scope) -> bool:
        """Whether the lane serves this connection: an agent's WebSocket, not
        addressed to an app's host."""
        if scope["type"] != "websocket" or scope["path"] != AGENT_PATH:
            return False
        return self.apps_domain is None or app_route(scope, self.apps_domain) is None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.forwarded is not None:
            await self.forwarded(scope, receive, send)  # rewrites the scope, then returns
        if self.takes(scope):
            scope["app"] = self  # as Starlette would: the endpoint reads app.state
            await agent_connect(WebSocket(scope, receive, send))
        else:
            await super().__call__(scope, receive, send)


async def _rewritten(scope: Scope, receive: Receive, send: Send) -> None:
    """What the proxy-header middleware passes the rewritten scope to: nothing
    (:meth:`FleetApp.__call__` goes on with it)."""
