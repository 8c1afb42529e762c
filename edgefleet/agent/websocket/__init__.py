"""The agent's WebSocket client (RFC 6455), small enough to keep in memory for
months: asyncio streams, h11 for the HTTP upgrade, nothing else (issue 18:
websockets loaded urllib, email, http.client and importlib.metadata).

    connect(url) -> proxy.open_stream (TCP, TLS for wss, a CONNECT tunnel when
    the environment names a proxy) -> handshake.upgrade -> client.WebSocket
    (frames.py: the bytes on the wire, no I/O)

No extension (permessage-deflate) and no subprotocol is offered: the agent's
frames are small JSON or mux frames, and a deflate context costs each side
tens of KB per connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from edgefleet.agent.websocket.client import WebSocket
from edgefleet.agent.websocket.handshake import HandshakeError, StatusRefused, upgrade
from edgefleet.agent.websocket.proxy import open_stream

if TYPE_CHECKING:
    import ssl

__all__ = ["HandshakeError", "StatusRefused", "WebSocket", "connect"]


@asynccontextmanager
async def connect(
    url: str,
    *,
    headers: dict[str, str],
    ssl_context: ssl.SSLContext | None = None,
    open_timeout: float = 15,
    ping_interval: float | None = 20,
    ping_timeout: float = 20,
    max_size: int = 1 << 20,
    close_timeout: float = 5,
) -> AsyncIterator[WebSocket]:
    """An open WebSocket to a ``ws://`` or ``wss://`` URL, closed (1000) on exit.
    TLS only for wss (with ``ssl_context``, or the system's defaults); raises
    :class:`HandshakeError`, :class:`StatusRefused`, ``OSError`` or
    ``TimeoutError`` when no WebSocket opens."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise HandshakeError(f"not a WebSocket URL: {url}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    if secure and ssl_context is None:
        from edgefleet.agent.tls import client_context  # TLS only for wss

        ssl_context = client_context()
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.netloc.rpartition("@")[2]
    async with asyncio.timeout(open_timeout):
        reader, writer = await open_stream(parts.hostname, port, ssl_context if secure else None)
        try:
            pending = await upgrade(reader, writer, host=host, target=target, headers=headers)
        except BaseException:
            writer.close()
            raise
    ws = WebSocket(
        reader,
        writer,
        pending,
        max_size=max_size,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
    )
    try:
        yield ws
    finally:
        await ws.close()
