"""The agent's one outbound connection, kept up forever.

Reconnects use exponential backoff with full jitter (delay drawn uniformly
from 0..min(cap, base * 2^attempt)), so 10,000 agents that lost the same
server do not come back in lockstep. The attempt count resets once a
connection is welcomed. With several ``--server`` URLs the agent moves to
the next one after each failure. Only :class:`DeviceRevoked` ends the loop.

A server over its admission rate answers 503 with ``Retry-After`` (or closes
with 4503 and ``retry-after=N``): its wait is a slot it booked for this agent,
so the agent waits that long plus up to a quarter more and a spread that
doubles with each refusal in a row (jitter, so agents told the same second do
not arrive in the same millisecond) and comes back to the same server, without
counting it as a failure. It never gives up and never enrolls again on a
refusal. The failure backoff's cap (``RECONNECT_CAP``, 20 s unless
``--reconnect-max-delay`` says otherwise) bounds how long after a restarted
server is up its last agent tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from edgefleet.agent.errors import DeviceRevoked
from edgefleet.agent.state import Identity
from edgefleet.agent.websocket import HandshakeError, StatusRefused, connect
from edgefleet.wire.link import Link, TransportClosed
from edgefleet.wire.messages import (
    FED_BINARY_PROTOCOL,
    Heartbeat,
    Hello,
    Message,
    Revoked,
    Welcome,
)
from edgefleet.wire.mux import AcceptHandler

if TYPE_CHECKING:
    import ssl

log = logging.getLogger(__name__)

REVOKED_CODE = 4401
BUSY_CODE = 4503
RECONNECT_CAP = 20.0
"""The longest wait between failed attempts, seconds. After a server restart the
last agent comes back at most this long after the server is up; 10,000 agents
retrying a server that is down cost it (the kernel) ~1,000 refused SYNs a second."""
MAX_MESSAGE = 8 * 1024 * 1024  # the largest WebSocket message the agent accepts
_JITTER = random.Random()
"""One generator for every backoff in the process: seeding a ``Random`` reads
2.5 KB from the OS (~25 us), and the fleet simulator made two per virtual
device. Jitter needs no generator of its own: only the event loop draws from it."""


class ServerBusy(Exception):
    """The server is admitting agents at its own pace: come back in ``wait`` s."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"server busy, retry in {wait:g} s")
        self.wait = wait


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header or a 4503 close reason, if sane."""
    if not value:
        return None
    text = value.strip().removeprefix("retry-after=")
    try:
        seconds = float(text)
    except ValueError:
        return None
    return min(seconds, 600.0) if seconds >= 0 else None


class Backoff:
    """Full-jitter exponential backoff for failures, and the wait after a busy
    server's refusal (:meth:`after_refusal`)."""

    def __init__(
        self, base: float = 1.0, cap: float = RECONNECT_CAP, rng: random.Random | None = None
    ) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0
        self.refusals = 0  # busy refusals in a row
        self._rng = rng or _JITTER

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 30)
        return self._rng.uniform(0, ceiling)

    def after_refusal(self, wait: float) -> float:
        """The wait after a busy server asked for ``wait`` s: that, up to a quarter
        more, plus a spread that doubles with each refusal in a row up to a quarter
        of the cap. Agents told the same second arrive apart, and one that a proxy
        keeps telling "1 s" still backs off. Not a failure: the agent keeps its
        server, its identity and its failure count."""
        spread = min(self.cap / 4, 0.25 * 2**self.refusals)
        self.refusals = min(self.refusals + 1, 30)
        return wait * self._rng.uniform(1.0, 1.25) + self._rng.uniform(0, spread)

    def reset(self) -> None:
        self.attempt = 0
        self.refusals = 0


def ws_url(server: str) -> str:
    if server.startswith("https://"):
        server = "wss://" + server[8:]
    elif server.startswith("http://"):
        server = "ws://" + server[7:]
    return server.rstrip("/") + "/api/v1/agent/connect"


class Connection:
    def __init__(
        self,
        identity: Identity,
        *,
        hello: Callable[[], Hello],
        on_message: Callable[[Message], Awaitable[None]],
        on_stream: AcceptHandler | None,
        heartbeat: Callable[[], Heartbeat],
        heartbeat_interval: float | None,
        reconnect_cap: float,
        ssl_context: ssl.SSLContext | None,
        on_up: Callable[[], Awaitable[None]] | None = None,
        on_down: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.identity = identity
        self._hello = hello
        self._on_message = on_message
        self._on_stream = on_stream
        self._heartbeat = heartbeat
        self._forced_interval = heartbeat_interval
        self.interval = heartbeat_interval or 10.0
        self.backoff = Backoff(cap=reconnect_cap)
        self._ssl = ssl_context
        self._on_up = on_up
        self._on_down = on_down
        self.link: Link | None = None
        self.welcome: Welcome | None = None
        self.connected = asyncio.Event()
        self._interval_changed = asyncio.Event()
        self._revoked: str | None = None
        self._server_index = 0

    @property
    def server(self) -> str:
        return self.identity.servers[self._server_index % len(self.identity.servers)]

    async def send(self, message: Message) -> bool:
        """Send if connected; returns False otherwise (callers keep their own state
        and resend everything after reconnecting)."""
        link = self.link
        if link is None or link.closed.is_set():
            return False
        try:
            await link.send(message)
        except TransportClosed:
            return False
        return True

    @property
    def fed_binary(self) -> bool:
        """The server speaks typed binary frames for federated messages (protocol 3+)."""
        welcome = self.welcome
        return welcome is not None and (welcome.protocol or 1) >= FED_BINARY_PROTOCOL

    async def send_frame(self, data: bytes) -> bool:
        """Send one typed binary frame if connected (see :meth:`send`)."""
        link = self.link
        if link is None or link.closed.is_set():
            return False
        try:
            await link.send_frame(data)
        except TransportClosed:
            return False
        return True

    async def _on_frame(self, data: bytes) -> None:
        """A typed binary frame from the server: a federated message, parsed strictly
        (:func:`edgefleet.fed.codec.decode_frame`: lengths, type code, the header's
        pydantic model); anything else is logged and dropped, as a bad text frame is."""
        from edgefleet.fed import codec
        from edgefleet.wire.fed_relay import load

        relay = load()  # the FedRelay class, resolved now that fed is in use
        try:
            payload = codec.decode_frame(data, limit=MAX_MESSAGE)
        except codec.FrameError as exc:
            log.warning("dropped a malformed binary frame from the server: %s", exc)
            return
        await self._on_message(relay.model_construct(payload=payload))

    async def run(self) -> None:
        while True:
            try:
                await self._session()
            except DeviceRevoked:
                raise
            except ServerBusy as exc:
                delay = self.backoff.after_refusal(exc.wait)
                log.info("%s is busy; coming back in %.1f s", self.server, delay)
                await asyncio.sleep(delay)
                continue
            except StatusRefused as exc:
                wait = retry_after(exc.retry_after)
                if exc.status in (429, 503) and wait is not None:
                    delay = self.backoff.after_refusal(wait)
                    log.info("%s is busy; coming back in %.1f s", self.server, delay)
                    await asyncio.sleep(delay)
                    continue
                log.warning("cannot reach %s: %s", self.server, exc)
            except (
                OSError,
                TimeoutError,
                HandshakeError,
                TransportClosed,
            ) as exc:
                log.warning("cannot reach %s: %s", self.server, exc)
            except Exception:  # a bug must not end the loop (only revocation does): logged once
                log.exception("connection to %s failed", self.server)
            if self._revoked:
                raise DeviceRevoked(self._revoked)
            self._server_index += 1
            delay = self.backoff.next_delay()
            log.info("reconnecting to %s in %.1f s", self.server, delay)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        headers = {"Authorization": f"Bearer {self.identity.credential}"}
        # No permessage-deflate (agent.websocket offers none): its zlib state costs
        # each side tens of KB per connection (the server holds 10,000), for frames
        # that are small JSON or stream data already framed by the mux.
        async with connect(
            ws_url(self.server),
            headers=headers,
            ssl_context=self._ssl if self.server.startswith(("https://", "wss://")) else None,
            open_timeout=15,
            ping_interval=20,
            ping_timeout=20,
            max_size=MAX_MESSAGE,
            close_timeout=5,
        ) as ws:
            link = Link(
                ws,
                odd=False,
                on_message=self._dispatch,
                on_stream=self._on_stream,
                on_frame=self._on_frame,
            )
            await link.send(self._hello())
            self.link = link
            beat = asyncio.create_task(self._beat(link))
            try:
                await link.run()
            finally:
                beat.cancel()
                self.link = None
                self.connected.clear()
                if self._on_down is not None:
                    await self._on_down()
            if link.close_code == REVOKED_CODE and not self._revoked:
                self._revoked = link.close_reason or "device credential revoked"
            if link.close_code == BUSY_CODE:
                raise ServerBusy(retry_after(link.close_reason) or 1.0)
            log.warning(
                "disconnected from %s (%s %s)", self.server, link.close_code, link.close_reason
            )

    async def _dispatch(self, message: Message) -> None:
        if isinstance(message, Welcome):
            self.welcome = message
            if self._forced_interval is None and self.interval != message.heartbeat_interval:
                self.interval = message.heartbeat_interval
                self._interval_changed.set()
            self.backoff.reset()
            self.connected.set()
            log.info("connected to %s as %s (%s)", self.server, message.name, message.device_id)
            if self._on_up is not None:
                await self._on_up()
            return
        if isinstance(message, Revoked):
            self._revoked = message.reason
            if self.link is not None:
                await self.link.close(1000, "revoked")
            return
        await self._on_message(message)

    async def _beat(self, link: Link) -> None:
        """Heartbeat every ``interval``. One wake-up per beat (the simulator runs
        10,000 of these loops); the server's Welcome, which may change the
        interval after this task started, wakes it early."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not link.closed.is_set():
            self._interval_changed.clear()
            due = last + self.interval - loop.time()
            if due > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._interval_changed.wait(), due)
                continue
            last = loop.time()
            try:
                await link.send(self._heartbeat())
            except TransportClosed:
                return
