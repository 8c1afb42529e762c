"""The agent part that samples the device's health and sends it to the server.

    every --telemetry-interval s: Sampler.sample() --> SampleBuffer (state dir)
                                                          |  connected: TelemetryBatch,
                                                          v  oldest first, <= batch size
                      server --TelemetryAck(upto)--> SampleBuffer.ack(upto)

Sampling never waits for the server: while it is unreachable the samples
pile up in the bounded buffer and go out, oldest first, once the connection
is back (:meth:`on_connected`). One batch is in flight at a time; an ack that
leaves more behind sends the next at once.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping

from edgefleet.agent.part import MessageHandler
from edgefleet.agent.telemetry.buffer import SampleBuffer
from edgefleet.agent.telemetry.sampler import Sampler
from edgefleet.tasks import cancel_all
from edgefleet.wire.messages import Message, TelemetryAck, TelemetryBatch
from edgefleet.wire.telemetry import MAX_SAMPLES

log = logging.getLogger(__name__)

RESEND = 30.0  # a batch not acknowledged in this long is offered again

Send = Callable[[Message], Awaitable[bool]]


class Telemetry:
    def __init__(
        self, sampler: Sampler, buffer: SampleBuffer, send: Send, *, interval: float
    ) -> None:
        self.sampler = sampler
        self.buffer = buffer
        self.send = send
        self.interval = interval
        self._lock = asyncio.Lock()
        self._in_flight: float | None = None  # loop time the unacked batch was sent
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="telemetry")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_all([self._task])
        self.buffer.close()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await asyncio.to_thread(self.take)
                stale = self._in_flight is not None and loop.time() - self._in_flight > RESEND
                if self._in_flight is None or stale:
                    await self.flush()
            except (OSError, ValueError, sqlite3.Error):  # unreadable /proc, full disk: next time
                log.exception("taking a telemetry sample failed")
            await asyncio.sleep(self.interval)

    def take(self) -> None:
        self.buffer.add(self.sampler.sample(self.buffer.next_seq()))

    async def flush(self) -> None:
        """Offer the oldest buffered samples (if connected)."""
        async with self._lock:
            batch = await asyncio.to_thread(self.buffer.oldest, MAX_SAMPLES)
            if not batch:
                self._in_flight = None
                return
            if await self.send(TelemetryBatch(samples=batch)):
                self._in_flight = asyncio.get_running_loop().time()

    def message_handlers(self) -> Mapping[type[Message], MessageHandler]:
        return {TelemetryAck: self.on_ack}

    async def on_ack(self, ack: TelemetryAck) -> None:
        await asyncio.to_thread(self.buffer.ack, ack.upto)
        self._in_flight = None
        if await asyncio.to_thread(self.buffer.count):
            await self.flush()

    async def on_connected(self) -> None:
        self._in_flight = None
        await self.flush()
