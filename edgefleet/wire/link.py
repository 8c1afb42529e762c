"""One agent connection, seen from either end.

A :class:`Link` owns a transport (a WebSocket on either side) and runs two
loops: a reader that decodes control messages and feeds stream frames to the
:class:`~edgefleet.wire.mux.Mux`, and a writer that always sends queued
control messages before stream data. So a 100 MB download through the proxy
delays a heartbeat by at most one stream frame, never by the whole transfer.

The writer runs only while something is queued: a link at rest, which is how
a server's 10,000 links spend nearly all their time, keeps no task waiting
for work (its task, context, coroutines and the futures it waited on were
~1.3 KB per connected device, issue 16).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol

from edgefleet.wire.messages import Message, ProtocolError, decode, encode
from edgefleet.wire.mux import AcceptHandler, Mux, SendFailed

MessageHandler = Callable[[Message], Awaitable[None]]
FrameHandler = Callable[[bytes], Awaitable[None]]
# A binary frame starting with this is a typed message frame (edgefleet.fed.codec:
# a federated message whose large part travels as raw bytes), not a stream frame;
# stream frames start with a kind byte of 1..6 (edgefleet.wire.mux).
TYPED_FRAME = b"EF\x01"


class Flag:
    """What :class:`asyncio.Event` offers a link (``set``, ``clear``, ``is_set``,
    ``wait``) without its cost at rest: an Event makes a deque of waiters
    (~0.8 KB) when created, and a link had six of them through its Events and
    its data Queue, per connected device, for months (issue 16). Here a waiter
    is one future, made only while someone waits and shared by every waiter."""

    __slots__ = ("_set", "_waiter")

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        # shielded: one waiter cancelled must not cancel the future the others share
        await asyncio.shield(self._waiter)


class TransportClosed(SendFailed):
    """The transport is gone; ``code`` and ``reason`` as the peer (or the OS) gave them."""

    def __init__(self, code: int = 1006, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


class Transport(Protocol):
    """The smallest surface a WebSocket needs to offer a :class:`Link`."""

    async def send_text(self, data: str) -> None:
        """Send one text frame."""

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary frame."""

    async def receive(self) -> str | bytes:
        """Next frame; raises :class:`TransportClosed` when the connection ends."""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection; must not raise if it is already closed."""


class Link:
    def __init__(
        self,
        transport: Transport,
        *,
        odd: bool,
        on_message: MessageHandler,
        on_stream: AcceptHandler | None = None,
        data_queue: int = 8,
        on_frame: FrameHandler | None = None,
    ) -> None:
        self.transport = transport
        self._on_message = on_message
        self._on_frame = on_frame  # typed binary frames; none: they are dropped
        # Lists, not deques: a deque allocates a 64-slot block (~0.7 KB) even
        # when empty, and these are empty nearly always, on every connection
        # (issue 16); the writer takes from their head, which for a few
        # items is as cheap.
        self._control: list[str | bytes] = []
        self._data: list[bytes] = []  # stream frames, at most data_queue
        self._data_queue = data_queue
        self._room = Flag()  # the writer took a stream frame
        self._writer: asyncio.Task[None] | None = None  # while something is queued
        self._write_failed = False  # the writer ended on an error: no new one
        self.mux = Mux(self._queue_frame, odd=odd, accept=on_stream)
        self.closed = Flag()
        self.close_code: int | None = None
        self.close_reason = ""

    async def send(self, message: Message) -> None:
        """Queue a control message ahead of any stream data."""
        if self.closed.is_set():
            raise TransportClosed(self.close_code or 1006, self.close_reason)
        self._control.append(encode(message))
        self._start_writer()

    async def send_frame(self, data: bytes) -> None:
        """Queue a typed binary frame (:data:`TYPED_FRAME`) with the control messages,
        in order with them and ahead of stream data."""
        if self.closed.is_set():
            raise TransportClosed(self.close_code or 1006, self.close_reason)
        self._control.append(data)
        self._start_writer()

    async def _queue_frame(self, data: bytes) -> None:
        while True:
            if self.closed.is_set():
                raise TransportClosed(self.close_code or 1006, self.close_reason)
            if len(self._data) < self._data_queue:
                break
            await self._wait_for_room()
        self._data.append(data)
        self._start_writer()

    def _start_writer(self) -> None:
        """Something was queued: a writer running takes it (it checks the queues
        again before it ends, with no wait in between); otherwise start one."""
        writer = self._writer
        if self._write_failed or (writer is not None and not writer.done()):
            return
        # (a writer cancelled from outside, e.g. at shutdown, is done: replaced)
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def _wait_for_room(self) -> None:
        """Back-pressure: wait until the writer takes a stream frame, or the
        connection ends; once it has, nobody takes any, and a stream writer
        would wait forever."""
        self._room.clear()
        room = asyncio.ensure_future(self._room.wait())
        ended = asyncio.ensure_future(self.closed.wait())
        try:
            await asyncio.wait((room, ended), return_when=asyncio.FIRST_COMPLETED)
        finally:
            room.cancel()
            ended.cancel()

    async def run(self) -> None:
        """Run until the transport closes; always leaves the mux closed."""
        try:
            await self._read_loop()
        finally:
            writer = self._writer
            try:
                if writer is not None:
                    writer.cancel()  # (a writer that already failed keeps its exception)
                    with contextlib.suppress(asyncio.CancelledError):
                        await writer  # a writer that failed otherwise re-raises its bug here ...
            finally:  # ... after the link has ended all the same
                self.mux.close(self.close_reason or "connection closed")
                self.closed.set()

    async def _read_loop(self) -> None:
        while True:
            try:
                frame = await self.transport.receive()
            except TransportClosed as exc:
                self.close_code, self.close_reason = exc.code, exc.reason
                return
            await self._dispatch(frame)
            # This frame waits for the next one for as long as the connection
            # lasts: keep neither the last frame nor its decoded message (on a
            # server, a heartbeat per connected device; issue 16).
            del frame

    async def _dispatch(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            if frame.startswith(TYPED_FRAME):
                if self._on_frame is not None:
                    await self._on_frame(frame)
                return
            self.mux.feed(frame)
            return
        try:
            message = decode(frame)
        except ProtocolError:
            # A peer speaking a newer protocol may send types we do not know;
            # dropping them keeps old agents and new servers compatible.
            return
        await self._on_message(message)

    async def _write_loop(self) -> None:
        try:
            while True:
                if self._control:
                    item = self._control.pop(0)
                    if isinstance(item, bytes):
                        await self.transport.send_bytes(item)
                    else:
                        await self.transport.send_text(item)
                elif self._data:
                    item = self._data.pop(0)
                    self._room.set()
                    await self.transport.send_bytes(item)
                else:
                    self._writer = None  # all sent: the next item queued starts a writer
                    return
        except TransportClosed as exc:
            self._write_failed = True
            self.close_code, self.close_reason = exc.code, exc.reason
            await self.transport.close()  # never raises (Transport.close)
        except Exception:
            self._write_failed = True  # a bug: kept in this task for run() to raise
            raise

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Flush queued control messages (best effort), then close."""
        for _ in range(50):
            if not self._control:
                break
            await asyncio.sleep(0.01)
        self.close_code, self.close_reason = code, reason
        await self.transport.close(code, reason)  # never raises (Transport.close)
