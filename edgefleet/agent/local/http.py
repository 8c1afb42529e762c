"""The local API's listener: a Unix socket served by the agent's HTTP loop
(:mod:`edgefleet.agent.http_server`), with streamed answers for ``follow``
logs. Who may connect is decided by the socket file's owner, group and mode
(0660), set before the first connection can be accepted (see :func:`bind_socket`).

Limits: request head 16 KiB, body ``max_body`` bytes, idle 60 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import socket
from pathlib import Path
from typing import Any

from edgefleet.agent.http_server import Handler, HttpError, HttpServer

MAX_HEAD = 16 * 1024


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


class UnixServer(HttpServer):
    """The local API's listener; ``max_body`` bounds what a route reads."""

    def __init__(self, handler: Handler, max_body: int) -> None:
        super().__init__(handler, name="local API", max_head=MAX_HEAD)
        self.max_body = max_body

    async def listen(self, sock: socket.socket) -> None:
        self.server = await asyncio.start_unix_server(self._accept, sock=sock)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.serve(reader, writer, "unix")


def json_body(raw: bytes) -> Any:
    """A request's JSON body; 400 when it is not JSON."""
    try:
        return json.loads(raw or b"{}")
    except ValueError as exc:
        raise HttpError(400, f"body: not JSON ({exc})") from exc
