"""Bounded work per request: what one caller can make this replica do.

- :class:`BodyLimit`: JSON endpoints get ``max_body_bytes``, enforced before
  a route reads anything; streaming endpoints (the app proxy, data and file
  uploads) are exempt and enforce their own limits.
- :class:`Limits`: the replica's guards, built once from the settings and
  held on the context: throttles for sign-in and enrollment, the slots that
  cap streams per user and per device, and the workers that CPU-heavy work
  runs in, a few at a time (Compose parsing in processes, argon2 in threads:
  it releases the GIL), so the event loop (heartbeats, the proxy, every
  other request) never waits on it.

WebSocket messages are capped by the server itself (``ws_max_size`` from
``max_websocket_message_bytes``, see ``server/main.py``): a larger message
closes that socket with 1009 before the message is ever buffered whole.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgefleet.server.errors import TooManyRequests
from edgefleet.server.settings import ServerSettings
from edgefleet.server.throttle import Clock, Slots, SlotsFull, Throttle
from edgefleet.server.worker_priority import lower_priority, start_parser
from edgefleet.spec import loader, work

T = TypeVar("T")
log = logging.getLogger(__name__)


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
        # Made lazily, on first use (or warm_up).
        self._parse_slots = settings.compose_parse_concurrency
        self._hash_slots = settings.password_hash_concurrency
        self._pool: ProcessPoolExecutor | None = None
        self._hashers: ThreadPoolExecutor | None = None

    async def parse(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` (Compose parsing, a module-level function of
        :mod:`edgefleet.spec.work` or ``compose``) in a worker process, within
        the server's Compose budget; ``compose_parse_concurrency`` processes,
        more requests queue. A process, not a thread: pure-Python parsing
        would hold the GIL and every hop of the event loop would wait for it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._parsers(), partial(work.within, self.compose_budget, fn, *args)
        )

    def _parsers(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: never fork the server itself (threads, sockets, an event loop),
            # and no forkserver in between: the workers are the server's own
            # children and see it go (forkserver processes outlived a killed server).
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self._parse_slots,
                mp_context=context,
                initializer=start_parser,
                initargs=(os.getpid(),),  # not getppid() there: the server may be gone already
            )
        return self._pool

    def warm_up(self) -> None:
        """Start the parsing processes (and their imports) now, not on the first upload."""
        pool = self._parsers()
        for _ in range(self._parse_slots):
            pool.submit(work.findings, "services: {}")

    def close(self) -> None:
        if self._pool is not None:
            # Joined, not left: a parse in flight ends within its Compose budget,
            # and workers left running make the resource tracker report their
            # queues' semaphores as leaked on every server stop.
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._hashers is not None:
            self._hashers.shutdown(wait=False, cancel_futures=True)
            self._hashers = None

    async def hash(self, work: Callable[[], T]) -> T:
        """Run ``work`` (argon2: ~64 MiB and tens of ms of CPU on several
        threads, GIL released) in one of ``password_hash_concurrency`` threads
        of its own, at a lower CPU priority than the event loop."""
        if self._hashers is None:
            self._hashers = ThreadPoolExecutor(
                self._hash_slots, thread_name_prefix="argon2", initializer=lower_priority
            )
        return await asyncio.get_running_loop().run_in_executor(self._hashers, work)

    def claim_stream(self, user: str, device: str | None = None) -> Callable[[], None]:
        """Take one stream slot of ``user`` (and of ``device``) now, so that a full
        budget is a 429 before any byte of the stream is sent; returns the release.

        :class:`TooManyRequests` names the limit that is full; nothing is held then."""
        try:
            self.streams_per_user.take(user)
        except SlotsFull as exc:
            raise TooManyRequests(
                f"you already have {exc.limit} streams open (max_streams_per_user); "
                "close one first",
                field="max_streams_per_user",
            ) from exc
        if device is not None:
            try:
                self.streams_per_device.take(device)
            except SlotsFull as exc:
                self.streams_per_user.release(user)
                raise TooManyRequests(
                    f"device {device} already has {exc.limit} streams open "
                    "(max_streams_per_device); try again when one closes",
                    field="max_streams_per_device",
                ) from exc
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.streams_per_user.release(user)
            if device is not None:
                self.streams_per_device.release(device)

        return release

    @asynccontextmanager
    async def stream(self, user: str, device: str | None = None) -> AsyncIterator[None]:
        """Hold one stream slot of ``user`` (and of ``device``) while open."""
        release = self.claim_stream(user, device)
        try:
            yield
        finally:
            release()

    async def held(
        self, body: AsyncIterator[bytes], release: Callable[[], None]
    ) -> AsyncIterator[bytes]:
        """A streaming response's body that gives its slots back when it ends,
        however it ends (client gone, stream closed, error)."""
        try:
            async for chunk in body:
                yield chunk
        finally:
            release()
