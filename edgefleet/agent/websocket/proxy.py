"""The TCP (and TLS) stream under the WebSocket, through a proxy when the
environment names one.

The proxy is chosen as websockets chose it before (``https_proxy``/``wss_proxy``
for wss, ``ws_proxy``/``https_proxy``/``http_proxy`` for ws, ``no_proxy``
honoured); ``urllib.request``, which reads these, loads only when a ``*_proxy``
variable is set, so an agent without one never pays for it (issue 18). Only
HTTP(S) proxies are spoken (``CONNECT``); a SOCKS proxy is refused with a
clear error rather than bypassed.
"""

from __future__ import annotations

import asyncio
import base64
import os
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from edgefleet.agent.websocket.handshake import HandshakeError, tunnel

if TYPE_CHECKING:
    import ssl

LIMIT = 1 << 16  # StreamReader buffer high-water mark
# What asyncio's TLS layer reads at once (its SSLProtocol.max_size, 256 KiB by
# default): the ciphertext taken from the socket per turn of the loop, and what
# each decrypting read asks OpenSSL for. asyncio zero-fills a buffer of that
# size per connection, resident for as long as the WebSocket lives (months on a
# device); and each read allocated that much to return one TLS record (16 KiB of
# plaintext at most). At the reader's own limit the idle https agent keeps
# ~0.2 MB less and a 300 MB TLS download took ~0.9 s of CPU instead of ~1.7 s
# (issue 18).
TLS_READ = LIMIT


def _proxy_set() -> bool:
    """Whether any ``*_proxy`` variable (any case) is set and not empty. Asked on
    every connection, so of the raw names (``os.environb``, POSIX): decoding the
    whole environment each time cost ~70 us, paid 10,000 times by the fleet
    simulator's agents connecting at once."""
    return any(os.environb[k] for k in os.environb if k[-6:].lower() == b"_proxy")


def proxy_for(host: str, port: int, secure: bool) -> str | None:
    """The proxy URL for this server, or None (direct)."""
    if not _proxy_set():
        return None
    import urllib.request  # only when a *_proxy variable is set

    if urllib.request.proxy_bypass(f"{host}:{port}"):
        return None
    proxies = urllib.request.getproxies()
    schemes = ["wss", "socks", "https"] if secure else ["ws", "socks", "https", "http"]
    for scheme in schemes:
        if proxies.get(scheme):
            return proxies[scheme]
    return None


async def open_stream(
    host: str, port: int, context: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A stream to ``host:port``, TLS when ``context`` is given (SNI and the
    certificate checked against ``host``)."""
    if context is not None:
        _tls_reads_of(TLS_READ)
    proxy = proxy_for(host, port, context is not None)
    if proxy is None:
        return await asyncio.open_connection(
            host, port, ssl=context, server_hostname=host if context else None, limit=LIMIT
        )
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HandshakeError(f"proxy {parts.scheme}://{parts.hostname} is not an HTTP proxy")
    proxy_port = parts.port or (443 if parts.scheme == "https" else 80)
    proxy_tls = _default_context() if parts.scheme == "https" else None
    reader, writer = await asyncio.open_connection(
        parts.hostname,
        proxy_port,
        ssl=proxy_tls,
        server_hostname=parts.hostname if proxy_tls else None,
        limit=LIMIT,
    )
    try:
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode()
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        await tunnel(reader, writer, authority=authority, authorization=authorization)
        if context is not None:
            await writer.start_tls(context, server_hostname=host)
    except BaseException:
        writer.close()
        raise
    return reader, writer


def _tls_reads_of(size: int) -> None:
    """asyncio's TLS connections read ``size`` bytes at once. A class attribute
    of asyncio's, so for the whole process: the WebSocket (and a proxy's TLS)
    are the agent's only asyncio TLS connections (agent/footprint.py)."""
    from asyncio import sslproto

    sslproto.SSLProtocol.max_size = size


def _default_context() -> ssl.SSLContext:
    from edgefleet.agent.tls import client_context  # only for an https proxy

    return client_context()
