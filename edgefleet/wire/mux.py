"""Many flow-controlled byte streams over one message transport.

Exec sessions, log follows, proxied HTTP requests and port-forwards all share
the agent's single outbound connection. Each is a *stream*: opened by either
side with a JSON header, carrying DATA frames both ways, half-closed by each
side, or reset with an error.

Flow control is per stream and credit based (as in HTTP/2): a sender may
have at most ``window`` unacknowledged bytes in flight; the receiver grants
more (WINDOW frames) as its consumer reads. Because every stream's buffer is
bounded by its window, :meth:`Mux.feed` never blocks, so the connection's
reader can never be stalled by one slow consumer, and heartbeats keep flowing.

Frame layout (one binary transport message per frame)::

    +--------+----------------+--------------------+
    | type:1 | stream id:4 BE | payload (0..256 KiB)|
    +--------+----------------+--------------------+

    OPEN    payload = JSON header         opener -> acceptor
    ACCEPT  payload = JSON meta           acceptor -> opener
    DATA    payload = bytes               either way, counts against the window
    WINDOW  payload = 4-byte increment    receiver -> sender
    CLOSE   no payload                    "I will send no more" (half close)
    RESET   payload = UTF-8 reason        abort both directions

A receiver that wants more in flight than the initial window (a proxied
download) grants the difference in a WINDOW frame as soon as the stream
exists (:meth:`Stream.widen`): every peer, old or new, honours credit, so
the window grows without a protocol change. Bulk senders use frames of up to
:data:`BULK_FRAME` (both ends have always accepted 8 MiB messages); control
traffic and exec stay at :data:`MAX_FRAME`.

Stream life::

    open() --OPEN--> [opening] --ACCEPT--> [open] --CLOSE both--> [done]
                         \\--RESET--> [reset]        \\--RESET--> [reset]

The mux knows nothing about WebSockets or NATS: it is given a coroutine that
sends one frame (raising :class:`SendFailed` when the carrier is gone), and is
fed the frames that arrive. The server reuses it to bridge a stream across
replicas over the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

OPEN, ACCEPT, DATA, WINDOW, CLOSE, RESET = 1, 2, 3, 4, 5, 6
_HEADER = struct.Struct("!BI")
MAX_FRAME = 64 * 1024
BULK_FRAME = 256 * 1024  # the largest DATA payload: byte pipes (proxy, port-forward)
INITIAL_WINDOW = 256 * 1024

SendFrame = Callable[[bytes], Awaitable[None]]
AcceptHandler = Callable[["Stream"], Awaitable[None]]

log = logging.getLogger(__name__)


class SendFailed(Exception):
    """A frame could not be sent: what carries the streams (the agent connection,
    the bus between replicas) is gone. What a :data:`SendFrame` raises then;
    :class:`edgefleet.wire.link.TransportClosed` is one."""


class StreamError(Exception):
    """Base of stream errors::

    StreamError
     +-- StreamReset     the peer (or the mux) aborted the stream; .reason says why
     +-- StreamRefused   the peer refused to open the stream; .reason says why
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StreamReset(StreamError):
    pass


class StreamRefused(StreamError):
    pass


def frame(kind: int, stream_id: int, payload: bytes = b"") -> bytes:
    return _HEADER.pack(kind, stream_id) + payload


class Stream:
    """One bidirectional stream. ``recv`` returns one DATA payload at a time,
    so a sender that writes messages no larger than :data:`MAX_FRAME` keeps
    its message boundaries (exec relies on this)."""

    def __init__(self, mux: Mux, stream_id: int, header: dict[str, Any]) -> None:
        self.mux = mux
        self.id = stream_id
        self.header = header
        self.meta: dict[str, Any] = {}
        self._inbox: deque[bytes] = deque()
        self._buffered = 0
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._accepted = asyncio.Event()
        self._got_accept = False
        self._send_window = mux.initial_window
        self._recv_window = mux.initial_window  # what the peer may have in flight
        self._consumed = 0
        self._remote_closed = False
        self._local_closed = False
        self._reset: StreamError | None = None

    # -- reading ----------------------------------------------------------------

    async def recv(self) -> bytes | None:
        """Next chunk, or ``None`` once the peer closed its side."""
        while not self._inbox:
            if self._reset is not None:
                raise self._reset
            if self._remote_closed:
                return None
            self._readable.clear()
            await self._readable.wait()
        chunk = self._inbox.popleft()
        self._buffered -= len(chunk)
        self._consumed += len(chunk)
        if self._consumed >= self._recv_window // 2 and self._reset is None:
            grant, self._consumed = self._consumed, 0
            await self.mux._send(frame(WINDOW, self.id, struct.pack("!I", grant)))
        return chunk

    async def read_all(self, limit: int | None = None) -> bytes:
        parts: list[bytes] = []
        size = 0
        while (chunk := await self.recv()) is not None:
            parts.append(chunk)
            size += len(chunk)
            if limit is not None and size > limit:
                break
        return b"".join(parts)

    # -- writing ----------------------------------------------------------------

    async def send(self, data: bytes, frame_size: int = MAX_FRAME) -> None:
        """Send bytes, waiting for window credit; raises if the stream was reset.
        ``frame_size`` (at most :data:`BULK_FRAME`): the largest DATA frame, for
        senders that do not need :data:`MAX_FRAME` message boundaries."""
        view = memoryview(data)
        limit = min(frame_size, BULK_FRAME)
        while view:
            while self._send_window <= 0:
                self._check_writable()
                self._writable.clear()
                await self._writable.wait()
            self._check_writable()
            size = min(len(view), self._send_window, limit)
            self._send_window -= size
            await self.mux._send(_HEADER.pack(DATA, self.id) + view[:size])
            view = view[size:]

    async def widen(self, window: int) -> None:
        """Let the peer have up to ``window`` bytes in flight (more than the mux's
        initial window): a WINDOW frame grants the difference at once. For
        throughput over a slow round trip; the buffer is bounded by ``window``."""
        if window <= self._recv_window or self._reset is not None:
            return
        grant, self._recv_window = window - self._recv_window, window
        await self.mux._send(frame(WINDOW, self.id, struct.pack("!I", grant)))

    def _check_writable(self) -> None:
        if self._reset is not None:
            raise self._reset
        if self._local_closed:
            raise StreamReset("stream already closed for writing")

    async def close(self) -> None:
        """Half-close: no more data from this side. Idempotent."""
        if self._local_closed or self._reset is not None:
            return
        self._local_closed = True
        await self.mux._send(frame(CLOSE, self.id))
        self._maybe_done()

    async def reset(self, reason: str) -> None:
        """Abort both directions and tell the peer why. Idempotent."""
        if self._reset is not None:
            return
        self._on_reset(StreamReset(reason))
        # the carrier (or the mux) is gone: the peer's end is reset with it
        with contextlib.suppress(SendFailed, StreamError):
            await self.mux._send(frame(RESET, self.id, reason.encode()[:1024]))

    # -- opening ------------------------------------------------------------------

    async def accept(self, meta: dict[str, Any] | None = None) -> None:
        """Acceptor side: confirm the open (optionally with metadata)."""
        self.meta = meta or {}
        await self.mux._send(frame(ACCEPT, self.id, json.dumps(self.meta).encode()))

    async def refuse(self, reason: str) -> None:
        """Acceptor side: refuse the open; the opener's ``wait_accepted`` raises."""
        self._on_reset(StreamRefused(reason))
        await self.mux._send(frame(RESET, self.id, reason.encode()[:1024]))

    async def wait_accepted(self, timeout: float | None = None) -> dict[str, Any]:
        try:
            await asyncio.wait_for(self._accepted.wait(), timeout)
        except TimeoutError:
            await self.reset("timed out waiting for the device to answer")
            raise StreamRefused("timed out waiting for the device to answer") from None
        if not self._got_accept:
            raise StreamRefused(self._reset.reason if self._reset else "refused by peer")
        return self.meta

    @property
    def closed(self) -> bool:
        return self._reset is not None or (self._local_closed and self._remote_closed)

    # -- fed by the mux -----------------------------------------------------------

    def _on_data(self, payload: bytes) -> None:
        if self._remote_closed or self._reset is not None:
            return
        if self._buffered + len(payload) > self._recv_window:
            self._on_reset(StreamReset("peer exceeded its flow-control window"))
            return
        self._inbox.append(payload)
        self._buffered += len(payload)
        self._readable.set()

    def _on_window(self, increment: int) -> None:
        self._send_window += increment
        self._writable.set()

    def _on_accept(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        self._got_accept = True
        self._accepted.set()

    def _on_close(self) -> None:
        self._remote_closed = True
        self._readable.set()
        self._maybe_done()

    def _on_reset(self, error: StreamError) -> None:
        if self._reset is None:
            self._reset = error
        self._readable.set()
        self._writable.set()
        self._accepted.set()
        self.mux._forget(self.id)

    def _maybe_done(self) -> None:
        if self._local_closed and self._remote_closed:
            self.mux._forget(self.id)


class Mux:
    """Streams over one transport. ``odd`` picks this side's stream id parity so
    both sides can open streams without colliding (the server opens odd ids)."""

    def __init__(
        self,
        send_frame: SendFrame,
        *,
        odd: bool,
        accept: AcceptHandler | None = None,
        initial_window: int = INITIAL_WINDOW,
    ) -> None:
        self._send_frame = send_frame
        self._accept = accept
        self.initial_window = initial_window
        self._next_id = 1 if odd else 2
        self._streams: dict[int, Stream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed: str | None = None

    def __len__(self) -> int:
        return len(self._streams)

    async def open(self, header: dict[str, Any]) -> Stream:
        if self._closed is not None:
            raise StreamRefused(self._closed)
        stream_id = self._next_id
        self._next_id += 2
        stream = Stream(self, stream_id, header)
        self._streams[stream_id] = stream
        await self._send(frame(OPEN, stream_id, json.dumps(header).encode()))
        return stream

    async def _send(self, data: bytes) -> None:
        if self._closed is not None:
            raise StreamReset(self._closed)
        await self._send_frame(data)

    def _forget(self, stream_id: int) -> None:
        self._streams.pop(stream_id, None)

    def feed(self, data: bytes) -> None:
        """Handle one incoming frame. Never blocks and never raises on bad input
        from the peer: a frame for an unknown stream is dropped."""
        if len(data) < _HEADER.size:
            return
        kind, stream_id = _HEADER.unpack_from(data)
        payload = data[_HEADER.size :]
        if kind == OPEN:
            self._on_open(stream_id, payload)
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        if kind == DATA:
            stream._on_data(payload)
        elif kind == WINDOW and len(payload) == 4:
            stream._on_window(struct.unpack("!I", payload)[0])
        elif kind == ACCEPT:
            stream._on_accept(_json_or_empty(payload))
        elif kind == CLOSE:
            stream._on_close()
        elif kind == RESET:
            reason = payload.decode(errors="replace") or "reset by peer"
            error: StreamError = (
                StreamReset(reason) if stream._got_accept else StreamRefused(reason)
            )
            stream._on_reset(error)

    def _on_open(self, stream_id: int, payload: bytes) -> None:
        if self._accept is None or stream_id in self._streams or self._closed is not None:
            return
        stream = Stream(self, stream_id, _json_or_empty(payload))
        stream._got_accept = True
        stream._accepted.set()
        self._streams[stream_id] = stream
        task = asyncio.get_running_loop().create_task(self._run_acceptor(stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_acceptor(self, stream: Stream) -> None:
        assert self._accept is not None
        try:
            await self._accept(stream)
        except StreamError:
            pass
        except Exception as exc:  # one bad handler must not take the connection down
            log.exception("stream %s (%s) failed", stream.id, stream.header.get("kind", "?"))
            await stream.reset(f"internal error: {exc}")
        finally:
            if not stream.closed:
                with contextlib.suppress(StreamError):
                    await stream.close()

    def close(self, reason: str = "connection closed") -> None:
        """The transport is gone: fail every stream and stop acceptor tasks."""
        if self._closed is not None:
            return
        self._closed = reason
        for stream in list(self._streams.values()):
            stream._on_reset(StreamReset(reason))
        self._streams.clear()
        for task in list(self._tasks):
            task.cancel()


def _json_or_empty(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload) if payload else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
