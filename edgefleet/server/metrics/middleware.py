"""The ASGI layer that feeds :class:`ServerMetrics`: every HTTP request's route
template, status and duration, WebSockets open, and the event-loop lag
monitor, which lives as long as the app's lifespan."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgefleet.server.metrics.registry import UNMATCHED, ServerMetrics
from edgefleet.tasks import cancel_all


class RouteTemplates:
    """Route object -> its full path pattern (``/api/v1/devices/{device}``).

    FastAPI puts the *original* route in ``scope["route"]``, whose own path
    lacks the prefix it was included under, so the full pattern is looked up
    in the app's route table, read once on first use (all routes exist by then).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._by_route: dict[int, str] | None = None

    def _table(self) -> dict[int, str]:
        if self._by_route is None:
            from fastapi.routing import iter_route_contexts

            table: dict[int, str] = {}
            for context in iter_route_contexts(self.app.routes):
                path = context.path_format or context.path
                if path:
                    table.setdefault(id(context.original_route), path)
            self._by_route = table
        return self._by_route

    def __call__(self, scope: Scope) -> str:
        route: Any = scope.get("route")
        if route is None:
            return UNMATCHED
        found = self._table().get(id(route))
        if found is not None:
            return found
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
        return path if isinstance(path, str) and path else UNMATCHED


class LoopLag:
    """Sleeps ``interval`` seconds at a time and records how much later than
    asked it woke: a blocked event loop shows here before anything times out."""

    def __init__(self, metrics: ServerMetrics, interval: float) -> None:
        self.metrics = metrics
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="metrics-loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_all([task])  # a loop that had crashed says so here

    async def _run(self) -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(self.interval)
            self.metrics.loop_lag.set(max(0.0, time.monotonic() - asked - self.interval))


class HttpMetrics:
    """Outermost middleware: it sees every request, the ones refused early too."""

    def __init__(
        self, app: ASGIApp, metrics: ServerMetrics, lag_interval: float, templates: RouteTemplates
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = templates
        self.lag = LoopLag(metrics, lag_interval)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            self.lag.start()
            try:
                await self.app(scope, receive, send)
            finally:
                await self.lag.stop()
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.observe(
                scope.get("method", ""),
                self.templates(scope),
                status,
                time.perf_counter() - started,
            )

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        opened: str | None = None

        async def sending(message: Message) -> None:
            nonlocal opened
            if message["type"] == "websocket.accept" and opened is None:
                opened = self.templates(scope)
                self.metrics.websockets.labels(opened).inc()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if opened is not None:
                self.metrics.websockets.labels(opened).dec()
