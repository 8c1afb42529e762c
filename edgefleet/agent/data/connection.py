"""One workload's connection to the data endpoint: a lean HTTP/1.1 reader for
the one request that is hot (POST records), as an :class:`asyncio.Protocol`.

A record POSTed alone costs the workload a round trip and one fdatasync on
the device; everything else the agent spends on it is overhead, and with h11,
a stream reader and a task per connection that overhead was three times the
fdatasync. Here a request is parsed where its bytes arrive (``bytes.find``,
no task, no timeout object per read), handed to :class:`Fast` with its whole
body, and answered from the group commit's callback::

    bytes --data_received--> head (CRLF CRLF, <= max_head) --> Content-Length body
        POST /v1/JOB/TOKEN  --> Fast.handle --> group commit --> reply --> next request
        anything else       --> handed over, bytes and all, to the shared h11
                                loop (agent/http_server.py) for the rest of
                                the connection: files, context, lock, GET,
                                chunked bodies, ``Expect: 100-continue``, HTTP/1.0,
                                a bare CR or LF or a control character in the head

Requests are answered in order: while one waits for its commit, what the
client pipelines behind it is kept (reading pauses past ``PAUSE_BYTES``).
Limits: the head ``max_head`` bytes (431), the body ``Fast.max_body`` (413,
before it is read), a request's head and body within ``request_timeout`` of
its first byte (408: a slow client cannot hold a connection open by trickling
bytes), a keep-alive connection idle ``idle_timeout`` (closed). A malformed
head is answered 400 naming the problem, and the connection closed.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote

from edgefleet.agent.http_server import HttpError, Response, error

PAUSE_BYTES = 256 * 1024  # pipelined bytes held while a request is answered
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
# In a head cut at its first CRLF CRLF: a CR or LF outside a CRLF, or a control
# character other than HTAB. h11 reads bare line ends as line ends and refuses
# control characters in a value; this reader would read such a head otherwise
# (a Content-Length hidden inside another header's value: a smuggled request),
# so it hands the connection to h11, bytes and all, which reads it as its own.
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def unusual(raw: bytes) -> bool:
    """Whether a head holds a bare CR or LF, or a control character other than
    HTAB. Every CR is in a CRLF, and so is every LF, exactly when the three
    counts agree; three C counts and one character class cost a third of one
    regex with look-arounds, and every request pays this."""
    pairs = raw.count(b"\r\n")
    return (
        raw.count(b"\r") != pairs or raw.count(b"\n") != pairs or _CONTROL.search(raw) is not None
    )


@dataclass(frozen=True, slots=True)
class Encoded:
    """A JSON answer whose payload is already bytes (newline included): the
    hot answer, a record's 201, is formatted by its endpoint without
    ``json.dumps``; it is written exactly as a :class:`Response` would be."""

    status: int
    payload: bytes


Reply = Callable[[Response | Encoded], None]


class Fast(Protocol):
    """The requests a connection serves itself (the rest are handed over)."""

    max_body: int

    def wants(self, method: str, path: str) -> bool:
        """Whether this request (by its method and unquoted path) is served here."""

    def handle(
        self,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        reply: Reply,
        alone: bool = False,
    ) -> None:
        """Serve one request whose whole body is ``body``: call ``reply`` once,
        now or later; or raise :class:`HttpError` (answered at once).
        ``alone``: this is the listener's only connection (nothing else can
        be waited for, or grouped with it)."""


class Listener(Protocol):
    """What a connection needs of its listener (:class:`edgefleet.agent.data.http.Server`)."""

    fast: Fast | None
    max_head: int
    request_timeout: float
    idle_timeout: float
    connections: set[Connection]

    def allow(self, peer: str) -> bool:
        """Whether this peer address may talk to the listener."""

    def refused(self, peer: Any) -> None:
        """Say that a peer was turned away."""

    def adopt(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
        """Serve the rest of a connection on the shared h11 loop."""


class BadRequest(Exception):
    """A head this reader refuses; answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Head:
    """A parsed request head."""

    __slots__ = ("close", "headers", "length", "method", "path", "plain", "query")

    def __init__(self, data: bytes) -> None:
        line, _, rest = data.partition(b"\r\n")
        parts = line.split(b" ")
        if len(parts) != 3 or not parts[0] or not _TOKEN.issuperset(parts[0]):
            raise BadRequest(400, f"malformed request line {line[:100]!r}")
        method, target, version = parts
        if not target.startswith(b"/"):
            raise BadRequest(400, f"the request target {target[:100]!r} is not a path")
        if version not in (b"HTTP/1.1", b"HTTP/1.0"):
            raise BadRequest(505 if version.startswith(b"HTTP/") else 400, "speak HTTP/1.1")
        headers: dict[str, str] = {}
        for field in rest.split(b"\r\n") if rest else ():
            name, colon, value = field.partition(b":")
            if not colon or not name or not _TOKEN.issuperset(name):
                raise BadRequest(400, f"malformed header line {field[:100]!r}")
            key = name.decode().lower()
            text = value.strip(b" \t").decode("latin-1")
            if key in headers:
                if key == "content-length" and headers[key] != text:
                    raise BadRequest(400, "two different Content-Length headers")
                text = f"{headers[key]}, {text}"
            headers[key] = text
        self.method = method.decode()
        raw, _, query = target.decode("latin-1").partition("?")
        self.path = unquote(raw) if "%" in raw else raw
        self.query = _query(query)
        self.headers = headers
        length = headers.get("content-length", "0")
        if not length.isdigit() or not length.isascii():
            raise BadRequest(400, f"Content-Length {length[:40]!r} is not a number")
        self.length = int(length)
        connection = headers.get("connection", "").lower()
        self.close = "close" in connection
        # What h11 does better: chunked bodies, 100-continue, HTTP/1.0's keep-alive rules.
        self.plain = (
            version == b"HTTP/1.1"
            and "transfer-encoding" not in headers
            and "expect" not in headers
        )


def _query(text: str) -> dict[str, str]:
    """The query's parameters, the last of a repeated one winning (as the h11
    loop reads them); ``stream=NAME`` alone is split without parse_qs."""
    if not text:
        return {}
    if "&" in text or "%" in text or "+" in text:
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
    name, _, value = text.partition("=")
    return {name: value}


def encode(response: Response | Encoded, close: bool) -> bytes:
    """The bytes of a JSON answer, as the h11 loop writes them."""
    if isinstance(response, Encoded):
        payload, extra = response.payload, b""
    else:
        payload = json.dumps(response.body).encode() + b"\n"
        extra = "".join(f"{k}: {v}\r\n" for k, v in response.headers.items()).encode("latin-1")
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s%s\r\n%s"
        % (
            response.status,
            _REASONS.get(response.status, b""),
            len(payload),
            extra,
            b"connection: close\r\n" if close else b"",
            payload,
        )
    )


class Connection(asyncio.Protocol):
    """One accepted TCP connection of ``server`` (see the module's docstring)."""

    def __init__(self, server: Listener) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.buf = bytearray()
        self.head: Head | None = None  # parsed, its body not all here yet
        self.head_end = 0
        self.busy = False  # a request is being answered
        self.paused = False  # reading: see _flow
        self.blocked = False  # the peer does not read its answers (asyncio's pause_writing)
        self.started: float | None = None  # when the request being read began
        self.last = self.loop.time()
        self.timer: asyncio.TimerHandle | None = None
        self.eof = False  # the peer sent all it will send
        self._processing = False

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if not peer or not self.server.allow(str(peer[0])):
            self.server.refused(peer)
            transport.abort()
            return
        self.peer = str(peer[0])
        self.server.connections.add(self)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None
        if self.timer is not None:
            self.timer.cancel()

    def data_received(self, data: bytes) -> None:
        self.last = self.loop.time()
        if not self.buf and self.started is None and not self.busy:
            self.started = self.last
        self.buf += data
        self._process()
        self._flow()

    def pause_writing(self) -> None:
        self.blocked = True
        self._flow()

    def resume_writing(self) -> None:
        self.blocked = False
        self._process()
        self._flow()
        self._close_at_eof()

    def _flow(self) -> None:
        """Read no more while the peer leaves its answers unread, or while a
        request is answered and ``PAUSE_BYTES`` wait behind it: what one
        connection makes the agent hold stays bounded."""
        transport = self.transport
        pause = self.blocked or (self.busy and len(self.buf) > PAUSE_BYTES)
        if transport is None or pause == self.paused:
            return
        self.paused = pause
        if pause:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def eof_received(self) -> bool:
        """A peer may half-close after its last request: it is still answered."""
        self.eof = True
        if not self.busy:
            self._process()
        self._close_at_eof()
        return True

    def _close_at_eof(self) -> None:
        if self.eof and not self.busy and self.transport is not None:
            self.transport.close()

    # -- requests ---------------------------------------------------------------------

    def _process(self) -> None:
        """Serve the complete requests in the buffer, one at a time."""
        if self._processing:
            return
        self._processing = True
        try:
            while not self.busy and not self.blocked and self.transport is not None and self.buf:
                if not self._next():
                    return
        finally:
            self._processing = False

    def _next(self) -> bool:
        """Serve the request at the buffer's start; False when more bytes are needed."""
        fast = self.server.fast
        if self.head is None:
            if self.started is None:
                self.started = self.loop.time()
            if self.buf[:2] == b"\r\n":  # empty lines between requests (RFC 9112 2.2)
                del self.buf[:2]
                return True
            end = self.buf.find(b"\r\n\r\n", 0, self.server.max_head + 4)
            if end < 0:
                if len(self.buf) > self.server.max_head:
                    self._refuse(431, f"request head over {self.server.max_head} bytes")
                elif b"\n\n" in self.buf or b"\n\r\n" in self.buf:  # bare LF endings: h11's
                    self._hand_over()
                return False
            raw = bytes(self.buf[:end])
            if unusual(raw):  # a bare CR or LF, a control character: h11's rules
                self._hand_over()
                return False
            try:
                head = Head(raw)
            except BadRequest as exc:
                self._refuse(exc.status, exc.message)
                return False
            if fast is None or not head.plain or not fast.wants(head.method, head.path):
                self._hand_over()
                return False
            if head.length > fast.max_body:
                message = (
                    f"request body of {head.length} bytes is over the limit of {fast.max_body}"
                )
                self._refuse(413, message)
                return False
            self.head, self.head_end = head, end + 4
        head, start = self.head, self.head_end
        if fast is None or len(self.buf) < start + head.length:
            return False
        body = bytes(self.buf[start : start + head.length])
        del self.buf[: start + head.length]
        self.head, self.busy, self.started = None, True, None
        try:
            alone = len(self.server.connections) == 1
            fast.handle(head.path, head.query, head.headers, body, self._replier(head.close), alone)
        except HttpError as exc:
            self._reply(error(exc.status, exc.message, exc.headers), head.close)
        return True

    def _replier(self, close: bool) -> Reply:
        return lambda response: self._reply(response, close)

    def _reply(self, response: Response | Encoded, close: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(encode(response, close))
        self.busy = False
        self.last = self.loop.time()
        if close:
            self.buf.clear()  # what was pipelined behind it is never served
            transport.close()
            return
        if self._processing:  # answered at once, within _process: it serves the rest
            return
        if self.buf and self.started is None:
            self.started = self.last
        self._process()
        self._flow()
        self._close_at_eof()

    def _refuse(self, status: int, message: str) -> None:
        if self.transport is not None:
            self.transport.write(encode(error(status, message), close=True))
            self.transport.close()

    def _hand_over(self) -> None:
        """Give the connection, with what it has buffered, to the h11 loop."""
        transport = self.transport
        assert transport is not None
        self.server.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None  # nothing of this object touches it any more
        reader = asyncio.StreamReader(limit=2**16)
        protocol = asyncio.StreamReaderProtocol(reader)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self.blocked:
            protocol.pause_writing()  # the transport's state, so its resume finds it paused
        if self.paused:
            transport.resume_reading()  # before the reader's own flow control may pause it
        reader.feed_data(bytes(self.buf))
        self.buf.clear()
        if self.eof:
            reader.feed_eof()
        writer = asyncio.StreamWriter(transport, protocol, reader, self.loop)
        self.server.adopt(reader, writer, self.peer)

    # -- timeouts ---------------------------------------------------------------------

    def _arm(self) -> None:
        every = min(self.server.request_timeout, self.server.idle_timeout) / 2
        self.timer = self.loop.call_later(every, self._check)

    def _check(self) -> None:
        """Slow requests are answered 408, idle connections closed; a request
        waiting for its commit is neither (a slow disk is not the client's)."""
        transport = self.transport
        if transport is None:
            return
        now = self.loop.time()
        if self.busy:
            pass
        elif self.started is not None and now - self.started > self.server.request_timeout:
            self._refuse(408, f"the request took over {self.server.request_timeout:g} s to arrive")
            return
        elif self.started is None and now - self.last > self.server.idle_timeout:
            transport.close()
            return
        self._arm()
