"""The agent's WebSocket client against a scripted peer (frames the real server
never sends) and a proxy: fragments, pings, close codes, limits, keepalive."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from edgefleet.agent.websocket import HandshakeError, StatusRefused, connect, frames
from edgefleet.wire.link import TransportClosed
from tests.unit.agent.websocket.peer import PeerSide, frame, peer

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def close_body(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


async def test_fragments_join_pings_are_answered_and_a_4503_close_is_echoed() -> None:
    async def script(side: PeerSide) -> None:
        await side.send(
            frame(PING, b"p1"),
            frame(TEXT, b"hel", fin=False),
            frame(PING, b"p2"),  # a control frame inside a fragmented message
            frame(CONT, "lo é".encode()),
            frame(BINARY, b"\x01" * 70_000),  # a 64-bit length
        )
        assert await side.read() == (PONG, b"p1")
        assert await side.read() == (PONG, b"p2")
        assert await side.read() == (TEXT, b"hello")  # the client's own text frame
        await side.send(frame(CLOSE, close_body(4503, "retry-after=7")))
        assert await side.read_close() == (4503, "")  # the echo; the server ends TCP

    async with peer(script) as server, connect(server.url, headers={}) as ws:
        assert await ws.receive() == "hello é"
        assert await ws.receive() == b"\x01" * 70_000
        await ws.send_text("hello")
        with pytest.raises(TransportClosed) as closed:
            await ws.receive()
        assert (closed.value.code, closed.value.reason) == (4503, "retry-after=7")
        with pytest.raises(TransportClosed):
            await ws.send_bytes(b"late")
        await server.outcome()


async def test_the_upgrade_request_carries_our_headers_and_no_extension() -> None:
    requests: list[bytes] = []

    async def script(side: PeerSide) -> None:
        assert await side.read_close() == (1000, "bye")
        await side.send(frame(CLOSE, close_body(1000, "bye")))

    async with peer(script, requests=requests) as server:
        async with connect(server.url, headers={"Authorization": "Bearer efd_x"}) as ws:
            await ws.close(1000, "bye")
            assert ws.done.is_set()
        await server.outcome()
    head = requests[0].decode().lower()
    assert head.startswith("get /api/v1/agent/connect http/1.1\r\n")
    for line in ("authorization: bearer efd_x", "upgrade: websocket", "sec-websocket-version: 13"):
        assert line in head
    assert "sec-websocket-extensions" not in head and "sec-websocket-protocol" not in head


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (frame(TEXT, b"x", mask=True), frames.PROTOCOL_ERROR),
        (frame(CONT, b"x"), frames.PROTOCOL_ERROR),
        (frame(TEXT, b"a", fin=False) + frame(BINARY, b"b"), frames.PROTOCOL_ERROR),
        (bytes([0x83, 0]), frames.PROTOCOL_ERROR),  # unknown opcode
        (bytes([0xC1, 1]) + b"x", frames.PROTOCOL_ERROR),  # RSV1 without deflate
        (frame(PING, b"x" * 126), frames.PROTOCOL_ERROR),
        (frame(TEXT, b"\xff\xfe"), frames.INVALID_DATA),
        (frame(BINARY, b"x" * 600, fin=False) + frame(CONT, b"x" * 600), frames.TOO_BIG),
        (frame(BINARY, b"x" * 1001), frames.TOO_BIG),
    ],
)
async def test_a_malformed_or_oversized_frame_fails_the_connection(raw: bytes, code: int) -> None:
    async def script(side: PeerSide) -> None:
        await side.send(raw)
        assert (await side.read_close())[0] == code

    async with peer(script) as server, connect(server.url, headers={}, max_size=1000) as ws:
        with pytest.raises(TransportClosed) as closed:
            await ws.receive()
        assert closed.value.code == code
        await server.outcome()


async def test_a_peer_that_never_answers_pings_is_dropped() -> None:
    async def script(side: PeerSide) -> None:
        assert (await side.read())[0] == PING
        await asyncio.sleep(5)  # no pong

    async with peer(script) as server:
        async with connect(server.url, headers={}, ping_interval=0.1, ping_timeout=0.3) as ws:
            with pytest.raises(TransportClosed) as closed:
                await asyncio.wait_for(ws.receive(), 5)
        assert (closed.value.code, closed.value.reason) == (1006, "keepalive ping timeout")


async def test_a_busy_answer_keeps_its_retry_after() -> None:
    busy = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n"
    async with peer(lambda side: asyncio.sleep(0), answer=busy) as server:
        with pytest.raises(StatusRefused) as refused:
            async with connect(server.url, headers={}):
                pass
    assert (refused.value.status, refused.value.retry_after) == (503, "7")


async def test_a_101_with_the_wrong_accept_key_is_refused() -> None:
    wrong = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"
    )
    async with peer(lambda side: asyncio.sleep(0), answer=wrong) as server:
        with pytest.raises(HandshakeError, match="Accept"):
            async with connect(server.url, headers={}):
                pass


async def test_frames_sent_with_the_101_are_not_lost() -> None:
    """The real server may close (4503) in the same packet as its 101."""

    async def script(side: PeerSide) -> None:
        assert (await side.read_close())[0] == 4401

    revoked = frame(TEXT, b'{"type":"revoked"}') + frame(
        CLOSE, close_body(4401, "credential revoked")
    )
    async with peer(script, with_101=revoked) as server, connect(server.url, headers={}) as ws:
        assert await ws.receive() == '{"type":"revoked"}'
        with pytest.raises(TransportClosed) as closed:
            await ws.receive()
        assert (closed.value.code, closed.value.reason) == (4401, "credential revoked")
        await server.outcome()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@asynccontextmanager
async def _proxy(heads: list[bytes], answer: bytes = b"") -> AsyncIterator[int]:
    """An HTTP proxy that answers CONNECT (with ``answer`` when given) and pipes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head)
        if answer:
            writer.write(answer)
            writer.close()
            return
        host, port = head.split(b" ")[1].decode().rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_a_proxy_from_the_environment_carries_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def script(side: PeerSide) -> None:
        await side.send(frame(TEXT, b"through"))
        assert await side.read_close() == (1000, "")

    heads: list[bytes] = []
    for name in ("no_proxy", "NO_PROXY", "ws_proxy", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    async with _proxy(heads) as port, peer(script) as server:
        monkeypatch.setenv("http_proxy", f"http://ann:s%40cret@127.0.0.1:{port}")
        async with connect(server.url, headers={}) as ws:
            assert await ws.receive() == "through"
        await server.outcome()
    target = server.url.split("/")[2]
    assert heads[0].startswith(f"CONNECT {target} HTTP/1.1\r\n".encode())
    assert b"Proxy-Authorization: Basic YW5uOnNAY3JldA==" in heads[0]  # ann:s@cret


async def test_a_proxy_that_refuses_is_a_handshake_error(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
    for name in ("no_proxy", "NO_PROXY", "ws_proxy", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    async with _proxy([], refused) as port:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
        with pytest.raises(StatusRefused, match="proxy answered HTTP 407") as caught:
            async with connect("ws://127.0.0.1:9/api/v1/agent/connect", headers={}):
                pass
    assert caught.value.status == 407
    monkeypatch.setenv("http_proxy", "socks5://127.0.0.1:1080")
    with pytest.raises(HandshakeError, match="not an HTTP proxy"):
        async with connect("ws://127.0.0.1:9/api/v1/agent/connect", headers={}):
            pass
