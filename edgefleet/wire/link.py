"""One agent connection, seen from either end.

A :class:`Link` owns a transport (a WebSocket on either side) and runs two
loops: a reader that decodes control messages and feeds stream frames to the
:class:`~edgefleet.wire.mux.Mux`, and a writer that always sends queued
control messages before stream data. So a 100 MB download through the proxy
delays a heartbeat by at most one stream frame, never by the whole transfer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
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
        self._control: deque[str | bytes] = deque()
        self._data: asyncio.Queue[bytes] = asyncio.Queue(maxsize=data_queue)
        self._wake = asyncio.Event()
        self.mux = Mux(self._queue_frame, odd=odd, accept=on_stream)
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""

    async def send(self, message: Message) -> None:
        """Queue a control message ahead of any stream data."""
        if self.closed.is_set():
            raise TransportClosed(self.close_code or 1006, self.close_reason)
        self._control.append(encode(message))
        self._wake.set()

    async def send_frame(self, data: bytes) -> None:
        """Queue a typed binary frame (:data:`TYPED_FRAME`) with the control messages,
        in order with them and ahead of stream data."""
        if self.closed.is_set():
            raise TransportClosed(self.close_code or 1006, self.close_reason)
        self._control.append(data)
        self._wake.set()

    async def _queue_frame(self, data: bytes) -> None:
        if self.closed.is_set():
            raise TransportClosed(self.close_code or 1006, self.close_reason)
        if self._data.full():
            await self._put_unless_closed(data)
        else:
            self._data.put_nowait(data)
        self._wake.set()

    async def _put_unless_closed(self, data: bytes) -> None:
        """Back-pressure: wait for room, unless the connection ends first; once it
        has, nobody reads the queue, and a stream writer would wait forever."""
        put = asyncio.ensure_future(self._data.put(data))
        ended = asyncio.ensure_future(self.closed.wait())
        try:
            await asyncio.wait((put, ended), return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            queued = put.done()
            if not queued:
                put.cancel()
        if not queued:
            raise TransportClosed(self.close_code or 1006, self.close_reason)

    async def run(self) -> None:
        """Run until the transport closes; always leaves the mux closed."""
        writer = asyncio.create_task(self._write_loop())
        try:
            await self._read_loop()
        finally:
            writer.cancel()
            try:
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
            if isinstance(frame, bytes):
                if frame.startswith(TYPED_FRAME):
                    if self._on_frame is not None:
                        await self._on_frame(frame)
                    continue
                self.mux.feed(frame)
                continue
            try:
                message = decode(frame)
            except ProtocolError:
                # A peer speaking a newer protocol may send types we do not know;
                # dropping them keeps old agents and new servers compatible.
                continue
            await self._on_message(message)

    async def _write_loop(self) -> None:
        try:
            while True:
                if self._control:
                    item = self._control.popleft()
                    if isinstance(item, bytes):
                        await self.transport.send_bytes(item)
                    else:
                        await self.transport.send_text(item)
                elif not self._data.empty():
                    await self.transport.send_bytes(self._data.get_nowait())
                else:
                    self._wake.clear()
                    await self._wake.wait()
        except TransportClosed as exc:
            self.close_code, self.close_reason = exc.code, exc.reason
            await self.transport.close()  # never raises (Transport.close)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Flush queued control messages (best effort), then close."""
        for _ in range(50):
            if not self._control:
                break
            await asyncio.sleep(0.01)
        self.close_code, self.close_reason = code, reason
        await self.transport.close(code, reason)  # never raises (Transport.close)
