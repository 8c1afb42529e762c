"""The NATS bus, for several server replicas (``--bus nats://host:4222``).

Core NATS (no JetStream): at-most-once, ordered per publisher and subject,
which is what the bus promises. Request/reply uses NATS's own inboxes, and
"no responders" comes back at once from the server (NATS >= 2.2), so asking
for a device nobody holds fails fast instead of timing out.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import nats
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from edgefleet.server.bus.base import BusError, BusMessage, BusTimeout, Handler, NoResponders

log = logging.getLogger(__name__)


class _NatsSubscription:
    def __init__(self, sub: Any) -> None:
        self._sub = sub

    async def unsubscribe(self) -> None:
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()


class NatsBus:
    def __init__(self, url: str) -> None:
        self.url = url
        self._nc: Any = None

    async def start(self) -> None:
        async def disconnected() -> None:
            log.warning("lost the NATS connection; reconnecting")

        async def reconnected() -> None:
            log.info("NATS connection restored")

        try:
            self._nc = await nats.connect(
                self.url.split(","),
                name="edgefleet-server",
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                connect_timeout=5,
            )
        except Exception as exc:
            raise BusError(f"cannot connect to NATS at {self.url}: {exc}") from exc

    async def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = None

    async def publish(self, subject: str, data: bytes, reply: str | None = None) -> None:
        await self._nc.publish(subject, data, reply=reply or "")

    async def subscribe(
        self, subject: str, handler: Handler, queue: str | None = None
    ) -> _NatsSubscription:
        async def callback(msg: Any) -> None:
            try:
                await handler(BusMessage(msg.subject, msg.data, msg.reply or None))
            except Exception:
                log.exception("bus handler failed on %s", msg.subject)

        sub = await self._nc.subscribe(subject, queue=queue or "", cb=callback)
        return _NatsSubscription(sub)

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        try:
            msg = await self._nc.request(subject, data, timeout=timeout)
        except NoRespondersError:
            raise NoResponders(subject) from None
        except (TimeoutError, NatsTimeout):
            raise BusTimeout(subject) from None
        return bytes(msg.data)
