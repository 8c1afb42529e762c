"""The data endpoint's listeners: TCP sockets served by the agent's HTTP loop
(:mod:`edgefleet.agent.http_server`).

Every peer address is checked before a byte is read (``allow``), so a listener
on a bridge gateway only talks to that bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

from edgefleet.agent.http_server import Handler, HttpServer

IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)  # Linux; Python names it from 3.12
MAX_HEAD = 32 * 1024

log = logging.getLogger(__name__)


class Server(HttpServer):
    """One listening socket. ``allow(peer_ip)`` decides who may talk to it."""

    def __init__(self, handler: Handler, allow: Callable[[str], bool]) -> None:
        super().__init__(handler, name="data endpoint", max_head=MAX_HEAD)
        self.allow = allow

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

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not peer or not self.allow(str(peer[0])):
            log.warning("data endpoint: refused a connection from %s", peer)
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await self.serve(reader, writer, str(peer[0]))
