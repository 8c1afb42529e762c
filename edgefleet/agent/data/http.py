"""A very small HTTP/1.1 server on asyncio + h11, for the local data endpoint.

The agent must stay light (no web framework): this serves one handler,
keeps connections alive, streams request bodies to the handler (files are
not held in memory), and checks every peer address before reading a byte
(``allow``), so a listener on a bridge gateway only talks to that bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11

IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)  # Linux; Python names it from 3.12

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 60.0
READ_SIZE = 64 * 1024


class HttpError(Exception):
    """An answer other than success, with a message for the workload."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    peer: str
    _body: Callable[[], AsyncIterator[bytes]] = field(repr=False)

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None and value.isdigit() else None

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (once)."""
        return self._body()

    async def read(self, limit: int) -> bytes:
        """The whole body; 413 past ``limit`` bytes."""
        declared = self.content_length
        if declared is not None and declared > limit:
            raise HttpError(413, f"request body of {declared} bytes is over the limit of {limit}")
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks():
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"request body is over the limit of {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[list[tuple[str, str]], bytes]:
        payload = json.dumps(self.body).encode() + b"\n"
        headers = [
            ("content-type", "application/json"),
            ("content-length", str(len(payload))),
            *self.headers.items(),
        ]
        return headers, payload


Handler = Callable[[Request], Awaitable[Response]]


class Server:
    """One listening socket. ``allow(peer_ip)`` decides who may talk to it."""

    def __init__(self, handler: Handler, allow: Callable[[str], bool]) -> None:
        self.handler = handler
        self.allow = allow
        self.server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()

    async def listen(self, host: str, port: int) -> int:
        """Listen on ``host``; an IPv4 address not on any interface yet is fine
        (IP_FREEBIND): a job network's bridge gets its gateway address only when
        its first container starts, and that container may post at once."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            sock.bind((host, port))
            sock.listen(128)
            sock.setblocking(False)
            self.server = await asyncio.start_server(self._accept, sock=sock)
        except BaseException:
            sock.close()
            raise
        return int(sock.getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for task in list(self._conns):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
        try:
            peer = writer.get_extra_info("peername")
            if not peer or not self.allow(str(peer[0])):
                log.warning("data endpoint: refused a connection from %s", peer)
                return
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await _Connection(reader, writer, self.handler, str(peer[0])).run()
        except (ConnectionError, TimeoutError, h11.ProtocolError):
            pass
        except Exception:
            log.exception("data endpoint: connection failed")
        finally:
            if task is not None:
                self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class _Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handler: Handler,
        peer: str,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.handler = handler
        self.peer = peer
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=32 * 1024)

    async def _next(self, timeout: float | None = None) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(self.reader.read(READ_SIZE), timeout)
            self.conn.receive_data(data)

    async def _send(self, *events: Any) -> None:
        # One write per response: separate small segments would meet Nagle and
        # delayed ACKs and cost milliseconds per request.
        self.writer.write(b"".join(self.conn.send(event) or b"" for event in events))
        await self.writer.drain()

    async def run(self) -> None:
        while True:
            try:
                event = await self._next(IDLE_TIMEOUT)
            except h11.RemoteProtocolError as exc:
                await self._fail(400, f"bad HTTP request: {exc}")
                return
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            if not isinstance(event, h11.Request):
                return
            await self._handle(event)
            if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is not h11.DONE:
                return
            self.conn.start_next_cycle()

    async def _body(self) -> AsyncIterator[bytes]:
        if self.conn.they_are_waiting_for_100_continue:
            # curl asks first for bodies over 1 KiB; without this it waits a second.
            await self._send(h11.InformationalResponse(status_code=100, headers=[]))
        while True:
            event = await self._next(IDLE_TIMEOUT)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return
            else:
                raise HttpError(400, "the request body ended early")

    async def _handle(self, event: h11.Request) -> None:
        target = urlsplit(event.target.decode("latin-1"))
        query = {k: v[-1] for k, v in parse_qs(target.query, keep_blank_values=True).items()}
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
        request = Request(
            method=event.method.decode("ascii", "replace"),
            path=unquote(target.path),
            query=query,
            headers=headers,
            peer=self.peer,
            _body=self._body,
        )
        try:
            response = await self.handler(request)
        except HttpError as exc:
            response = Response(
                exc.status, {"error": exc.message, "status": exc.status}, exc.headers
            )
        except Exception as exc:
            log.exception("data endpoint: handler failed")
            response = Response(500, {"error": f"internal error: {exc}", "status": 500})
        if self.conn.their_state is not h11.DONE:
            # The handler did not read the whole body (refused early): close after answering.
            response.headers["connection"] = "close"
        fields, payload = response.encode()
        await self._send(
            h11.Response(status_code=response.status, headers=fields),
            h11.Data(data=payload),
            h11.EndOfMessage(),
        )

    async def _fail(self, status: int, message: str) -> None:
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        fields, payload = Response(status, {"error": message, "status": status}).encode()
        with contextlib.suppress(Exception):
            await self._send(
                h11.Response(status_code=status, headers=[*fields, ("connection", "close")]),
                h11.Data(data=payload),
                h11.EndOfMessage(),
            )
