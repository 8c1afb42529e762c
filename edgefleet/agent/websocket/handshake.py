"""The HTTP/1.1 half of a WebSocket: the upgrade request (RFC 6455 section 4)
and a proxy's ``CONNECT`` tunnel, both parsed with h11 (which the agent's
local HTTP server loads anyway).

Errors::

    HandshakeError          no WebSocket came of it (bad answer, bad accept key)
     '- StatusRefused       the server answered with a status instead of 101;
                            ``status`` and ``retry_after`` (its header) kept
"""

from __future__ import annotations

import asyncio
import base64
import os

import h11

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
USER_AGENT = "edgefleet-agent"
_READ = 65536


class HandshakeError(Exception):
    """The server (or a proxy on the way) did not open a WebSocket."""


class StatusRefused(HandshakeError):
    """An HTTP answer other than 101 (or 2xx to a ``CONNECT``)."""

    def __init__(self, status: int, retry_after: str | None, what: str = "server") -> None:
        super().__init__(f"the {what} answered HTTP {status} instead of opening a WebSocket")
        self.status = status
        self.retry_after = retry_after


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``key`` (4.2.2).
    CPython's own SHA-1 (``_sha1``) where it exists: hashlib would load OpenSSL's
    libcrypto into an agent that otherwise needs none (cli/agent_entry.py)."""
    try:
        from _sha1 import sha1  # type: ignore[import-not-found]  # no stub: a C module
    except ImportError:  # another Python: hashlib's is the same function
        from hashlib import sha1
    return base64.b64encode(sha1(key.encode() + GUID).digest()).decode()


async def upgrade(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    host: str,
    target: str,
    headers: dict[str, str],
) -> bytes:
    """Send the upgrade request and check the answer; returns the bytes the
    server sent after its 101 (frames may follow it in the same packet)."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = [
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
        ("User-Agent", USER_AGENT),
        *headers.items(),
    ]
    answer, rest = await _exchange(reader, writer, "GET", target, request, "server")
    if answer.status_code != 101:
        raise StatusRefused(answer.status_code, _header(answer, b"retry-after"))
    upgrade_header = (_header(answer, b"upgrade") or "").lower()
    connection = (_header(answer, b"connection") or "").lower()
    if upgrade_header != "websocket" or "upgrade" not in connection:
        raise HandshakeError("the server's 101 did not upgrade to websocket")
    if _header(answer, b"sec-websocket-accept") != accept_key(key):
        raise HandshakeError("the server's Sec-WebSocket-Accept does not match our key")
    if _header(answer, b"sec-websocket-extensions") or _header(answer, b"sec-websocket-protocol"):
        raise HandshakeError("the server chose an extension or subprotocol we did not offer")
    return rest


async def tunnel(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    authority: str,
    authorization: str | None,
) -> None:
    """Ask an HTTP proxy to ``CONNECT`` to ``authority`` (host:port)."""
    request = [("Host", authority), ("User-Agent", USER_AGENT)]
    if authorization:
        request.append(("Proxy-Authorization", authorization))
    answer, rest = await _exchange(reader, writer, "CONNECT", authority, request, "proxy")
    if not 200 <= answer.status_code < 300:
        raise StatusRefused(answer.status_code, _header(answer, b"retry-after"), "proxy")
    if rest:
        raise HandshakeError("the proxy sent data before the tunnel was used")


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    what: str,
) -> tuple[h11.InformationalResponse | h11.Response, bytes]:
    """One request that asks to switch protocols, and the answer's head."""
    conn = h11.Connection(h11.CLIENT)
    try:
        writer.write(conn.send(h11.Request(method=method, target=target, headers=headers)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(_READ)
                if not data:
                    raise HandshakeError(f"the {what} closed the connection during the handshake")
                conn.receive_data(data)
                continue
            if isinstance(event, h11.InformationalResponse) and event.status_code != 101:
                continue  # 100 Continue and friends: the answer is still to come
            if isinstance(event, h11.InformationalResponse | h11.Response):
                rest = conn.trailing_data[0] if conn.our_state is h11.SWITCHED_PROTOCOL else b""
                return event, bytes(rest)
            raise HandshakeError(f"unexpected {type(event).__name__} from the {what}")
    except h11.ProtocolError as exc:
        raise HandshakeError(f"the {what} broke HTTP/1.1: {exc}") from exc


def _header(event: h11.InformationalResponse | h11.Response, name: bytes) -> str | None:
    values = [value.decode("latin-1") for key, value in event.headers if key == name]
    return ", ".join(values) if values else None
