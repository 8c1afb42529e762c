"""The agent's one small HTTP/1.1 server loop, on asyncio + h11.

The agent carries no web framework (it must stay small on devices). Two
listeners share this loop: the data endpoint for workloads (TCP, on loopback
and job networks' gateways: :mod:`edgefleet.agent.data.http`, whose own
reader serves POSTed records and hands every other request's connection
here) and the owner's local API (a Unix socket: :mod:`edgefleet.agent.local.http`). It serves one
handler per listener, keeps connections alive, streams request bodies to the
handler (files are not held in memory), answers ``Expect: 100-continue``, and
sends an answer either whole (:class:`Response`, JSON) or as it is produced
(:class:`Streamed`, chunked lines). Limits: the request head ``max_head``
bytes, idle ``IDLE_TIMEOUT`` seconds; the body is the handler's to bound
(:meth:`Request.read`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 60.0
READ_SIZE = 64 * 1024


class HttpError(Exception):
    """An answer other than success, with a message for the caller."""

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


@dataclass
class Streamed:
    """An answer sent as it is produced (chunked): lines of text."""

    status: int
    lines: AsyncIterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)


Answer = Response | Streamed
Handler = Callable[[Request], Awaitable[Answer]]


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The JSON shape of every refusal: ``{"error": ..., "status": ...}``."""
    return Response(status, {"error": message, "status": status}, headers or {})


class HttpServer:
    """The connections of one listener, each served by ``handler`` (``name``
    says which listener in the log); :meth:`close` ends them all."""

    def __init__(self, handler: Handler, *, name: str, max_head: int) -> None:
        self.handler = handler
        self.name = name
        self.max_head = max_head
        self.server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()

    async def close(self) -> None:
        if self.server is None:
            return
        self.server.close()
        for task in list(self._conns):
            task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), 2)

    async def serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        """Serve one accepted connection until it closes. A peer that goes away
        or speaks no HTTP ends it quietly; anything else is a bug, left to
        asyncio's handler (logged once, with its traceback)."""
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
        try:
            await _Connection(reader, writer, self, peer).run()
        except (ConnectionError, TimeoutError, h11.ProtocolError):
            pass
        finally:
            if task is not None:
                self._conns.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


class _Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        server: HttpServer,
        peer: str,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.server = server
        self.peer = peer
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=server.max_head)

    async def _next(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            async with asyncio.timeout(IDLE_TIMEOUT):  # no task per read, as wait_for made
                data = await self.reader.read(READ_SIZE)
            self.conn.receive_data(data)

    async def _send(self, *events: Any) -> None:
        # One write per response: separate small segments would meet Nagle and
        # delayed ACKs and cost milliseconds per request.
        self.writer.write(b"".join(self.conn.send(event) or b"" for event in events))
        await self.writer.drain()

    async def run(self) -> None:
        while True:
            try:
                event = await self._next()
            except h11.RemoteProtocolError as exc:
                await self._answer(error(400, f"bad HTTP request: {exc}"), close=True)
                return
            if not isinstance(event, h11.Request):
                return  # the peer closed, or paused mid-cycle
            await self._handle(event)
            if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is not h11.DONE:
                return
            self.conn.start_next_cycle()

    async def _body(self) -> AsyncIterator[bytes]:
        if self.conn.they_are_waiting_for_100_continue:
            # curl asks first for bodies over 1 KiB; without this it waits a second.
            await self._send(h11.InformationalResponse(status_code=100, headers=[]))
        while True:
            event = await self._next()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return
            else:
                raise HttpError(400, "the request body ended early")

    async def _handle(self, event: h11.Request) -> None:
        head = len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
        if head > self.server.max_head:
            # h11 bounds only a head that arrives in pieces; one sent whole is checked here.
            await self._answer(error(431, f"request head over {self.server.max_head} bytes"), True)
            return
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
        answer: Answer
        try:
            answer = await self.server.handler(request)
        except HttpError as exc:
            answer = error(exc.status, exc.message, exc.headers)
        except Exception as exc:  # a handler's bug: logged with its traceback, answered 500
            log.exception("%s: handler failed", self.server.name)
            answer = error(500, f"internal error: {exc}")
        self._skip_arrived_body()
        # A handler that did not read the whole body (refused early): close after answering.
        await self._answer(answer, close=self.conn.their_state is not h11.DONE)

    def _skip_arrived_body(self) -> None:
        """Consume what has already arrived of a body the handler left unread: a
        GET's empty body is all there, and its connection can then be kept."""
        with contextlib.suppress(h11.RemoteProtocolError):  # then closed after the answer
            while self.conn.their_state is h11.SEND_BODY:
                if self.conn.next_event() in (h11.NEED_DATA, h11.PAUSED):
                    return

    async def _answer(self, answer: Answer, close: bool) -> None:
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        extra = [("connection", "close")] if close else []
        if isinstance(answer, Response):
            fields, payload = answer.encode()
            await self._send(
                h11.Response(status_code=answer.status, headers=[*fields, *extra]),
                h11.Data(data=payload),
                h11.EndOfMessage(),
            )
            return
        head = [("content-type", "text/plain; charset=utf-8"), *answer.headers.items(), *extra]
        await self._send(h11.Response(status_code=answer.status, headers=head))
        try:
            async for line in answer.lines:
                await self._send(h11.Data(data=line))
        finally:
            with contextlib.suppress(AttributeError):
                await answer.lines.aclose()  # type: ignore[attr-defined]
        await self._send(h11.EndOfMessage())
