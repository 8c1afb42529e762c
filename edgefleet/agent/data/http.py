"""The data endpoint's listeners: TCP sockets whose connections are read by
:class:`edgefleet.agent.data.connection.Connection` (POSTed records, served
without a task) and handed to the agent's shared h11 loop
(:mod:`edgefleet.agent.http_server`) for every other request.

Every peer address is checked before a byte is read (``allow``), so a listener
on a bridge gateway only talks to that bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

from edgefleet.agent.data.connection import Connection, Fast
from edgefleet.agent.http_server import IDLE_TIMEOUT, Handler, HttpServer

IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)  # Linux; Python names it from 3.12
MAX_HEAD = 32 * 1024
REQUEST_TIMEOUT = 30.0  # from a request's first byte to its last (slow clients: 408)

log = logging.getLogger(__name__)


class Server(HttpServer):
    """One listening socket. ``allow(peer_ip)`` decides who may talk to it;
    ``fast`` serves the requests it wants on the connection itself."""

    def __init__(
        self,
        handler: Handler,
        allow: Callable[[str], bool],
        fast: Fast | None = None,
        *,
        request_timeout: float = REQUEST_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        super().__init__(handler, name="data endpoint", max_head=MAX_HEAD)
        self.allow = allow
        self.fast = fast
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        self.connections: set[Connection] = set()
        self._adopted: set[asyncio.Task[Any]] = set()

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
            loop = asyncio.get_running_loop()
            self.server = await loop.create_server(lambda: Connection(self), sock=sock)
        except BaseException:
            sock.close()
            raise
        return int(sock.getsockname()[1])

    def refused(self, peer: Any) -> None:
        log.warning("data endpoint: refused a connection from %s", peer)

    def adopt(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
        """Serve the rest of a connection on the h11 loop (TCP_NODELAY is
        asyncio's default for TCP transports)."""
        task = asyncio.get_running_loop().create_task(self.serve(reader, writer, peer))
        self._adopted.add(task)
        task.add_done_callback(self._adopted.discard)

    async def close(self) -> None:
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
        await super().close()
