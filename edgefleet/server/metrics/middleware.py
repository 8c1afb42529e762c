"""The ASGI layer that feeds :class:`ServerMetrics`: every HTTP request's route
template, status and duration, WebSockets open, and the event-loop lag
monitor, which lives as long as the app's lifespan."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgefleet.server.metrics.registry import UNMATCHED, ServerMetrics


def route_template(scope: Scope) -> str:
    """The matched route's path pattern (the router sets ``scope["route"]``)."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
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
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(self.interval)
            self.metrics.loop_lag.set(max(0.0, time.monotonic() - asked - self.interval))


class HttpMetrics:
    """Outermost middleware: it sees every request, the ones refused early too."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, lag_interval: float) -> None:
        self.app = app
        self.metrics = metrics
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
                route_template(scope),
                status,
                time.perf_counter() - started,
            )

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        opened: str | None = None

        async def sending(message: Message) -> None:
            nonlocal opened
            if message["type"] == "websocket.accept" and opened is None:
                opened = route_template(scope)
                self.metrics.websockets.labels(opened).inc()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if opened is not None:
                self.metrics.websockets.labels(opened).dec()
