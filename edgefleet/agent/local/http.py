"""The local API's HTTP/1.1 server: asyncio + h11 on a Unix socket.

The agent carries no web framework (it must stay small on devices), so this
is the data endpoint's tiny server (:mod:`edgefleet.agent.data.http`) shape
on a Unix socket, plus streamed answers (``follow`` logs, chunked). Who may
connect is decided by the socket file's owner, group and mode (0660), set
before the first connection can be accepted (see :func:`bind_socket`).

Limits: request head 16 KiB, body ``max_body`` bytes, idle 60 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from edgefleet.agent.data.http import HttpError, Request, Response

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 60.0
READ_SIZE = 64 * 1024
MAX_HEAD = 16 * 1024


@dataclass
class Streamed:
    """An answer sent as it is produced (chunked): lines of text."""

    status: int
    lines: AsyncIterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)


Answer = Response | Streamed
Handler = Callable[[Request], Awaitable[Answer]]


def bind_socket(path: Path, group: str | None, state_dir: Path | None = None) -> socket.socket:
    """A listening Unix socket at ``path``, mode 0660, owned by the agent's user
    and ``group`` (by name or number; default: the agent's own group). Bound
    under a 0077 umask and chmod-ed before ``listen``: no one else can ever
    connect, not even for a moment.

    When the socket is in the (0700) ``state_dir`` and a group is given, the
    group may *traverse* the state dir (0710, group-owned): it can reach the
    socket by name but cannot list the directory, and every file the agent
    keeps there is 0600."""
    gid = -1
    if group:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError as exc:
            raise ValueError(f"--local-api-group: no group {group!r} on this device") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chown(path, -1, gid)
    os.chmod(path, 0o660)
    if gid != -1 and state_dir is not None and path.parent == state_dir:
        os.chown(state_dir, -1, gid)
        os.chmod(state_dir, 0o710)
    sock.listen(64)
    sock.setblocking(False)
    return sock


class UnixServer:
    def __init__(self, handler: Handler, max_body: int) -> None:
        self.handler = handler
        self.max_body = max_body
        self.server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()

    async def listen(self, sock: socket.socket) -> None:
        self.server = await asyncio.start_unix_server(self._accept, sock=sock)

    async def close(self) -> None:
        if self.server is None:
            return
        self.server.close()
        for task in list(self._conns):
            task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
        try:
            await _Connection(reader, writer, self).run()
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
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: UnixServer
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.server = server
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)

    async def _next(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(self.reader.read(READ_SIZE), IDLE_TIMEOUT)
            self.conn.receive_data(data)

    async def _send(self, *events: Any) -> None:
        self.writer.write(b"".join(self.conn.send(event) or b"" for event in events))
        await self.writer.drain()

    async def run(self) -> None:
        while True:
            try:
                event = await self._next()
            except h11.RemoteProtocolError as exc:
                await self._answer(_error(400, f"bad HTTP request: {exc}"), close=True)
                return
            if not isinstance(event, h11.Request):
                return
            await self._handle(event)
            if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is not h11.DONE:
                return
            self.conn.start_next_cycle()

    async def _body(self) -> AsyncIterator[bytes]:
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
        if head > MAX_HEAD:
            # h11 bounds only a head that arrives in pieces; one sent whole is checked here.
            await self._answer(_error(431, f"request head over {MAX_HEAD} bytes"), close=True)
            return
        target = urlsplit(event.target.decode("latin-1"))
        query = {k: v[-1] for k, v in parse_qs(target.query, keep_blank_values=True).items()}
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
        request = Request(
            method=event.method.decode("ascii", "replace"),
            path=unquote(target.path),
            query=query,
            headers=headers,
            peer="unix",
            _body=self._body,
        )
        answer: Answer
        try:
            answer = await self.server.handler(request)
        except HttpError as exc:
            answer = _error(exc.status, exc.message)
        except Exception as exc:  # logged with its traceback, answered as a 500
            log.exception("local API: handler failed")
            answer = _error(500, f"internal error: {exc}")
        await self._answer(answer, close=self.conn.their_state is not h11.DONE)

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


def _error(status: int, message: str) -> Response:
    return Response(status, {"error": message, "status": status})


def json_body(raw: bytes) -> Any:
    """A request's JSON body; 400 when it is not JSON."""
    try:
        return json.loads(raw or b"{}")
    except ValueError as exc:
        raise HttpError(400, f"body: not JSON ({exc})") from exc
