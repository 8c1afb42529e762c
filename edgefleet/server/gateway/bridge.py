"""Streams to a device whose connection another replica holds.

The requesting replica and the holding replica each run a one-stream
:class:`~edgefleet.wire.mux.Mux` whose frames travel over the bus, so the
bridged stream has exactly the semantics (accept/refuse, half-close, reset,
per-stream flow control) of a local one::

    requester (API call here)                      holder (agent connected here)
    Mux(odd) --frames--> ef.stream.<sid>.h --> Mux(acceptor) --pump--> agent stream
             <--frames-- ef.stream.<sid>.r <--                <--pump--

Set-up is a bus request on the device's subject (``op: open_stream``), so
"nobody holds this device" is answered at once. The holder sends a keepalive
every few seconds; a requester that hears nothing for a while (the holder
died) resets the stream instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Coroutine
from typing import Any

from edgefleet.server.agent_session import AgentSession
from edgefleet.server.bus.base import (
    Bus,
    BusError,
    BusMessage,
    BusTimeout,
    NoResponders,
    Subscription,
)
from edgefleet.server.bus.envelopes import (
    EnvelopeError,
    OpenStream,
    StreamOpened,
    read_stream_opened,
)
from edgefleet.server.errors import GatewayTimeout, Unavailable
from edgefleet.wire.mux import Mux, SendFailed, SendFrame, Stream, StreamError

log = logging.getLogger(__name__)

PING = b"ping"
KEEPALIVE_EVERY = 5.0
SILENCE_LIMIT = 20.0


def device_subject(device_id: str) -> str:
    """The bus subject the replica holding a device's connection listens on."""
    return f"ef.device.{device_id}"


class StreamBridge:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._tasks: set[asyncio.Task[Any]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- requester side -------------------------------------------------------------------

    async def open(self, device_id: str, header: dict[str, Any]) -> Stream:
        sid = uuid.uuid4().hex
        last_heard = time.monotonic()

        async def on_frame(message: BusMessage) -> None:
            nonlocal last_heard
            last_heard = time.monotonic()
            if message.data != PING:
                mux.feed(message.data)

        send = _sender(self.bus, f"ef.stream.{sid}.h")
        mux = Mux(send, odd=True)
        sub = await self.bus.subscribe(f"ef.stream.{sid}.r", on_frame)
        try:
            reply = await self.bus.request(
                device_subject(device_id), OpenStream(sid=sid).encode(), 10
            )
        except NoResponders:
            await sub.unsubscribe()
            raise Unavailable(f"device {device_id} is offline") from None
        except BusTimeout:
            await sub.unsubscribe()
            raise GatewayTimeout(f"the replica holding device {device_id} did not answer") from None
        try:
            answer = read_stream_opened(reply)
        except EnvelopeError as exc:
            await sub.unsubscribe()
            raise Unavailable(f"the replica holding device {device_id} answered {exc}") from exc
        if answer.error:
            await sub.unsubscribe()
            raise Unavailable(answer.error)
        stream = await mux.open(header)

        async def watch() -> None:
            try:
                while not stream.closed:
                    await asyncio.sleep(KEEPALIVE_EVERY)
                    if time.monotonic() - last_heard > SILENCE_LIMIT:
                        mux.close("the server replica holding this device went away")
                        return
                while len(mux):
                    await asyncio.sleep(0.5)
            finally:
                await sub.unsubscribe()

        self._spawn(watch())
        return stream

    # -- holder side ----------------------------------------------------------------------

    async def accept(self, session: AgentSession, request: OpenStream, reply: str | None) -> None:
        sid = request.sid
        if reply is None:
            return
        done = asyncio.Event()
        opened = asyncio.Event()

        send = _sender(self.bus, f"ef.stream.{sid}.r")

        async def relay(bridged: Stream) -> None:
            opened.set()
            try:
                agent_stream = await session.link.mux.open(bridged.header)
                try:
                    meta = await agent_stream.wait_accepted(15)
                except StreamError as exc:
                    await bridged.refuse(exc.reason)
                    return
                await bridged.accept(meta)
                await asyncio.gather(_pump(bridged, agent_stream), _pump(agent_stream, bridged))
            finally:
                done.set()

        mux = Mux(send, odd=False, accept=relay)
        sub: Subscription = await self.bus.subscribe(
            f"ef.stream.{sid}.h", lambda message: _feed(mux, message)
        )
        await self.bus.publish(reply, StreamOpened().encode())

        async def keepalive() -> None:
            started = time.monotonic()
            try:
                while not done.is_set():
                    if not opened.is_set() and time.monotonic() - started > 15:
                        return  # the requester never followed up
                    try:
                        await self.bus.publish(f"ef.stream.{sid}.r", PING)
                    except BusError as exc:  # the requester's silence limit ends it
                        log.warning("stream %s: keepalive not sent: %s", sid, exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(done.wait(), KEEPALIVE_EVERY)
                    if session.link.closed.is_set():
                        mux.close("the device disconnected")
                        return
            finally:
                await sub.unsubscribe()

        self._spawn(keepalive())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()


async def _feed(mux: Mux, message: BusMessage) -> None:
    mux.feed(message.data)


def _sender(bus: Bus, subject: str) -> SendFrame:
    """How a bridged mux sends a frame: on the bus, whose failure is the mux's
    "the carrier is gone" (:class:`SendFailed`)."""

    async def send(frame: bytes) -> None:
        try:
            await bus.publish(subject, frame)
        except BusError as exc:
            raise SendFailed(str(exc)) from exc

    return send


async def _pump(source: Stream, target: Stream) -> None:
    """Copy one direction; half-close and reset propagate."""
    try:
        while (chunk := await source.recv()) is not None:
            await target.send(chunk)
        await target.close()
    except StreamError as exc:
        await target.reset(exc.reason)  # never raises: the peer may be gone already
