"""Bounded work per request: what one caller can make this replica do.

- :class:`BodyLimit`: JSON endpoints get ``max_body_bytes``, enforced before
  a route reads anything; streaming endpoints (the app proxy, data and file
  uploads) are exempt and enforce their own limits.
- :class:`Limits`: the replica's guards, built once from the settings and
  held on the context: throttles for sign-in and enrollment, the slots that
  cap streams per user and per device, and the worker threads that CPU-heavy
  work (Compose parsing, password hashing) runs in, a few at a time, so the
  event loop (heartbeats, the proxy, every other request) never waits on it.

WebSocket messages are capped by the server itself (``ws_max_size`` from
``max_websocket_message_bytes``, see ``server/main.py``): a larger message
closes that socket with 1009 before the message is ever buffered whole.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgefleet.server.errors import TooManyRequests
from edgefleet.server.settings import ServerSettings
from edgefleet.server.throttle import Clock, Slots, SlotsFull, Throttle
from edgefleet.spec import loader

T = TypeVar("T")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, exempt: tuple[str, ...]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(send, self.max_bytes)
            return
        received = 0
        sent_response = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal sent_response
            if message["type"] == "http.response.start":
                sent_response = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not sent_response:
                await _too_large(send, self.max_bytes)


class _TooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    message = f"request body larger than the limit of {limit} bytes"
    body: dict[str, Any] = {
        "detail": message,
        "error": {"code": "payload_too_large", "message": message},
    }
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class Limits:
    """The guards of one replica (in memory: with several replicas, each
    keeps its own budgets; see :mod:`edgefleet.server.throttle`)."""

    def __init__(self, settings: ServerSettings, clock: Clock = time.monotonic) -> None:
        self.login_per_user = Throttle(settings.login_failures_per_user, clock=clock)
        self.login_per_ip = Throttle(settings.login_failures_per_ip, clock=clock)
        self.enroll_per_ip = Throttle(settings.enroll_failures_per_ip, clock=clock)
        self.streams_per_user = Slots(settings.max_streams_per_user)
        self.streams_per_device = Slots(settings.max_streams_per_device)
        self.compose_budget = loader.Budget(
            max_bytes=settings.compose_max_expanded_bytes,
            max_nodes=settings.compose_max_values,
            max_depth=settings.compose_max_depth,
            seconds=settings.compose_parse_seconds,
        )
        # Made lazily: an anyio limiter belongs to the running event loop.
        self._parse_slots = settings.compose_parse_concurrency
        self._hash_slots = settings.password_hash_concurrency
        self._parsing: anyio.CapacityLimiter | None = None
        self._hashing: anyio.CapacityLimiter | None = None

    async def parse(self, work: Callable[[], T]) -> T:
        """Run ``work`` (Compose parsing) in a worker thread within the
        server's Compose budget; at most ``compose_parse_concurrency`` at once."""
        if self._parsing is None:
            self._parsing = anyio.CapacityLimiter(self._parse_slots)
        budget = self.compose_budget

        def run() -> T:
            with loader.budget(budget):
                return work()

        return await anyio.to_thread.run_sync(run, limiter=self._parsing)

    async def hash(self, work: Callable[[], T]) -> T:
        """Run ``work`` (argon2: ~64 MiB and tens of ms of CPU, GIL released) in
        a worker thread; at most ``password_hash_concurrency`` at once."""
        if self._hashing is None:
            self._hashing = anyio.CapacityLimiter(self._hash_slots)
        return await anyio.to_thread.run_sync(work, limiter=self._hashing)

    @asynccontextmanager
    async def stream(self, user: str, device: str | None = None) -> AsyncIterator[None]:
        """Hold one stream slot of ``user`` (and of ``device``) while open;
        :class:`TooManyRequests` naming the limit when one is full."""
        try:
            self.streams_per_user.take(user)
        except SlotsFull as exc:
            raise TooManyRequests(
                f"you already have {exc.limit} streams open (max_streams_per_user); "
                "close one first",
                field="max_streams_per_user",
            ) from exc
        try:
            if device is not None:
                try:
                    self.streams_per_device.take(device)
                except SlotsFull as exc:
                    raise TooManyRequests(
                        f"device {device} already has {exc.limit} streams open "
                        "(max_streams_per_device); try again when one closes",
                        field="max_streams_per_device",
                    ) from exc
                try:
                    yield
                finally:
                    self.streams_per_device.release(device)
            else:
                yield
        finally:
            self.streams_per_user.release(user)
