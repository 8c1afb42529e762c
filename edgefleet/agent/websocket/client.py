"""One client WebSocket over an asyncio stream (RFC 6455), shaped as the
:class:`~edgefleet.wire.link.Transport` a Link needs.

A reader task takes frames off the socket as they come: it answers pings,
notes pongs, joins fragmented messages, and queues whole messages for
:meth:`WebSocket.receive`. With ``MAX_QUEUE`` messages waiting it stops
reading (back-pressure reaches the server through TCP), as websockets did.
A keepalive task pings every ``ping_interval`` and drops a connection whose
pong does not come within ``ping_timeout``.

    open --close sent--> closing --peer's close + EOF--> done
      '---peer's close (echoed)------------------------> done
      '---EOF, error, keepalive timeout----------------> done (1006 or our code)

:class:`TransportClosed` carries the code and reason of the server's close
frame (1006 "connection lost" without one), which is how the agent learns
of 4401 (revoked) and 4503 (busy, ``retry-after=N``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque

from edgefleet.agent.websocket import frames
from edgefleet.agent.websocket.frames import FrameError
from edgefleet.wire.link import TransportClosed

log = logging.getLogger(__name__)

MAX_QUEUE = 16  # whole messages waiting for receive() before reading pauses
LIMIT = 1 << 16


class WebSocket:
    """Create with :func:`edgefleet.agent.websocket.connect`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pending: bytes,
        *,
        max_size: int,
        ping_interval: float | None,
        ping_timeout: float,
        close_timeout: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._pending = pending  # bytes read with the handshake's answer
        self._max_size = max_size
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._messages: deque[str | bytes] = deque()
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._pong = asyncio.Event()
        self._ping = b""
        self._close_sent = False
        self.code, self.reason = frames.ABNORMAL, "connection lost"
        self.done = asyncio.Event()
        self._tasks = [asyncio.create_task(self._read_loop())]
        if ping_interval:
            self._tasks.append(asyncio.create_task(self._keepalive(ping_interval)))

    # -- Transport ---------------------------------------------------------------------

    async def send_text(self, data: str) -> None:
        await self._send(frames.TEXT, data.encode())

    async def send_bytes(self, data: bytes) -> None:
        await self._send(frames.BINARY, data)

    async def receive(self) -> str | bytes:
        while not self._messages:
            if self.done.is_set():
                raise TransportClosed(self.code, self.reason)
            self._arrived.clear()
            await self._arrived.wait()
        message = self._messages.popleft()
        if len(self._messages) < MAX_QUEUE:
            self._room.set()
        return message

    async def close(self, code: int = frames.NORMAL, reason: str = "") -> None:
        """Send a close frame, wait up to ``close_timeout`` for the server's and
        for it to end the TCP connection, then drop the socket; never raises."""
        if not self.done.is_set() and not self._close_sent:
            self._close_sent = True
            self._room.set()  # keep reading: the server's close frame is behind the data
            try:
                self._write(frames.encode(frames.CLOSE, frames.close_payload(code, reason)))
                await self._writer.drain()
            except (OSError, TransportClosed):
                self._writer.transport.abort()
        try:
            await asyncio.wait_for(self.done.wait(), self._close_timeout)
        except TimeoutError:
            self._writer.transport.abort()
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the tasks and release the socket (no close handshake)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._writer.transport.abort()
        self.done.set()

    # -- writing -----------------------------------------------------------------------

    async def _send(self, opcode: int, payload: bytes) -> None:
        if self._close_sent or self.done.is_set():
            raise TransportClosed(self.code, self.reason)
        try:
            self._write(frames.encode(opcode, payload))
            await self._writer.drain()
        except OSError as exc:
            raise TransportClosed(self.code, self.reason) from exc

    def _write(self, frame: bytes | bytearray) -> None:
        if self._writer.transport.is_closing():
            raise TransportClosed(self.code, self.reason)
        self._writer.write(frame)  # one call per frame: frames never interleave

    # -- reading -----------------------------------------------------------------------

    async def _exactly(self, size: int) -> bytes:
        if not self._pending:
            return await self._reader.readexactly(size)
        head, self._pending = self._pending[:size], self._pending[size:]
        if len(head) == size:
            return head
        return head + await self._reader.readexactly(size - len(head))

    async def _read_loop(self) -> None:
        try:
            await self._read_frames()
        except FrameError as exc:
            log.warning("the server broke the WebSocket protocol: %s", exc)
            self.code, self.reason = exc.code, str(exc)
            if not self._close_sent:
                self._close_sent = True
                if not self._writer.transport.is_closing():
                    self._write(frames.encode(frames.CLOSE, frames.close_payload(exc.code, "")))
        except (asyncio.IncompleteReadError, OSError, TransportClosed):
            pass  # the connection ended without a close frame: code stays 1006 (or a close's)
        finally:
            self._writer.close()
            self.done.set()
            self._arrived.set()

    async def _read_frames(self) -> None:
        fragments: list[bytes] = []
        kind: int | None = None
        size = 0
        while True:
            first_two = await self._exactly(2)
            extended = frames.header_size(first_two[1])
            header = frames.parse_header(
                first_two, await self._exactly(extended) if extended else b""
            )
            if header.opcode in frames.DATA_OPCODES and size + header.length > self._max_size:
                raise FrameError(f"a message over {self._max_size} bytes", frames.TOO_BIG)
            payload = await self._exactly(header.length) if header.length else b""
            if header.opcode == frames.CLOSE:
                await self._closed_by_server(payload)
                return
            if header.opcode == frames.PING:
                if not self._close_sent:
                    self._write(frames.encode(frames.PONG, payload))
                continue
            if header.opcode == frames.PONG:
                if payload == self._ping:
                    self._pong.set()
                continue
            if header.opcode != frames.CONTINUATION:
                if kind is not None:
                    raise FrameError("a new message before the previous one ended")
                kind = header.opcode
            elif kind is None:
                raise FrameError("a continuation frame with no message to continue")
            fragments.append(payload)
            size += header.length
            if header.fin:
                await self._deliver(kind, b"".join(fragments))
                fragments, kind, size = [], None, 0

    async def _deliver(self, kind: int, data: bytes) -> None:
        if kind == frames.TEXT:
            try:
                self._messages.append(data.decode())
            except UnicodeDecodeError as exc:
                raise FrameError("a text message that is not UTF-8", frames.INVALID_DATA) from exc
        else:
            self._messages.append(data)
        self._arrived.set()
        if len(self._messages) >= MAX_QUEUE and not self._close_sent:
            self._room.clear()
            await self._room.wait()

    async def _closed_by_server(self, payload: bytes) -> None:
        """Echo the close (unless ours went first), then let the server end TCP."""
        self.code, self.reason = frames.parse_close(payload)
        if not self._close_sent:
            self._close_sent = True
            self._write(frames.encode(frames.CLOSE, frames.close_payload(self.code, "")))
        try:
            async with asyncio.timeout(self._close_timeout):
                while await self._reader.read(LIMIT):
                    pass  # nothing may follow a close frame: discarded until EOF
        except TimeoutError:
            log.debug("the server did not end the TCP connection after its close frame")

    async def _keepalive(self, interval: float) -> None:
        while not self.done.is_set():
            await asyncio.sleep(interval)
            if self._close_sent:
                return  # nothing but the close handshake after a close frame
            self._ping = os.urandom(4)
            self._pong.clear()
            try:
                self._write(frames.encode(frames.PING, self._ping))
            except TransportClosed:
                return
            try:
                await asyncio.wait_for(self._pong.wait(), self._ping_timeout)
            except TimeoutError:
                log.info("no pong within %g s: dropping the connection", self._ping_timeout)
                self.reason = "keepalive ping timeout"
                self._writer.transport.abort()
                return
