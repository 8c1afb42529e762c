"""A proxied HTTP exchange over a real mux pair, the far end playing the agent
and its app (no network): the head travels with the open, small answers come
back whole (however many frames they took), large ones streamed in a window
widened only for them, and a small answer cut short is a 502."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Message

from edgefleet.server.errors import BadGateway
from edgefleet.server.proxy.http import DOWNLOAD_WINDOW, WHOLE_BODY, Exchange
from edgefleet.wire.mux import BULK_FRAME, INITIAL_WINDOW, Mux, Stream, StreamError

App = Callable[[Stream, bytes], Awaitable[None]]


def wired(app: App) -> tuple[Mux, list[tuple[bytes, int]]]:
    """A server-side mux whose peer answers each stream with ``app``; records what
    the peer had received, and its send window, when it accepted."""
    seen: list[tuple[bytes, int]] = []
    to_agent: asyncio.Queue[bytes] = asyncio.Queue()
    to_server: asyncio.Queue[bytes] = asyncio.Queue()

    async def accept(stream: Stream) -> None:
        await asyncio.sleep(0.05)  # the agent connecting to the app
        request = b""
        while stream._inbox:  # already here when the agent accepts
            request += await stream.recv() or b""
        seen.append((request, stream._send_window))
        await stream.accept({})
        await app(stream, request)
        await stream.close()

    server = Mux(to_agent.put, odd=True)
    agent = Mux(to_server.put, odd=False, accept=accept)

    async def pump(source: asyncio.Queue[bytes], target: Mux) -> None:
        while True:
            target.feed(await source.get())

    loop = asyncio.get_running_loop()
    server._pumps = [
        loop.create_task(pump(to_agent, agent)),
        loop.create_task(pump(to_server, server)),
    ]  # type: ignore[attr-defined]
    return server, seen


def get(path: str) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"portal.example"), (b"authorization", b"Bearer secret")],
        "client": ("203.0.113.9", 4000),
        "server": ("portal.example", 80),
        "scheme": "http",
        "http_version": "1.1",
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    return Request(scope, receive)


async def exchange(app: App) -> tuple[object, list[tuple[bytes, int]], bytes]:
    server, seen = wired(app)
    proxied = Exchange(
        get("/page"), "/page", "/proxy/j/d/web/80",
        strip_cookies=set(), strip_authorization=True, portal_origin=False,
    )  # fmt: skip
    stream = await server.open({"kind": "tcp"})
    await proxied.start(stream)
    await stream.wait_accepted(2)
    response = await proxied.relay(stream)
    if isinstance(response, StreamingResponse):
        body = b"".join([bytes(chunk) async for chunk in response.body_iterator])  # type: ignore[misc]
    else:
        body = bytes(response.body)
    return response, seen, body


async def test_a_small_answer_comes_whole_after_one_round_trip() -> None:
    async def app(stream: Stream, request: bytes) -> None:
        await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a=b\r\n\r\nhello")

    response, seen, body = await exchange(app)
    request, window = seen[0]
    # the whole request was there before the agent accepted: no second round trip
    assert request.startswith(b"GET /page HTTP/1.1\r\n") and request.endswith(b"\r\n\r\n")
    assert b"authorization" not in request.lower()  # edgefleet's credential stays here
    assert b"X-Forwarded-Prefix: /proxy/j/d/web/80" in request
    assert window == INITIAL_WINDOW  # a small answer needs no more credit: no WINDOW frame
    assert not isinstance(response, StreamingResponse)
    assert body == b"hello"
    assert (b"set-cookie", b"a=b") in response.raw_headers  # type: ignore[attr-defined]


async def test_a_large_answer_is_streamed_whole_in_bulk_frames() -> None:
    size = 3 * DOWNLOAD_WINDOW + 12345  # more than the window: credit must flow back

    windows: list[int] = []

    async def app(stream: Stream, request: bytes) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode()
        await stream.send(head)
        await asyncio.sleep(0.1)  # the server has seen the head by now
        windows.append(stream._send_window + len(head))
        payload = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
        await stream.send(payload, BULK_FRAME)

    response, _, body = await asyncio.wait_for(exchange(app), 20)
    assert isinstance(response, StreamingResponse)
    assert len(body) == size
    assert body == bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    assert windows == [DOWNLOAD_WINDOW]  # widened once the answer is known to be large


async def test_a_small_answer_in_many_frames_still_comes_whole() -> None:
    body = b"x" * WHOLE_BODY

    async def app(stream: Stream, request: bytes) -> None:
        await stream.send(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        for start in range(0, len(body), 1000):  # as a workload writing in small pieces
            await stream.send(body[start : start + 1000])

    response, _, received = await exchange(app)
    assert not isinstance(response, StreamingResponse)
    assert received == body


async def test_a_small_answer_cut_short_is_a_bad_gateway() -> None:
    async def app(stream: Stream, request: bytes) -> None:
        await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")

    with pytest.raises(BadGateway, match="cut short"):
        await asyncio.wait_for(exchange(app), 10)


async def test_a_garbage_answer_is_a_bad_gateway_and_ends_the_stream() -> None:
    ended: list[str] = []

    async def app(stream: Stream, request: bytes) -> None:
        await stream.send(b"\x16\x03\x01 not http at all\r\n\r\n")
        try:
            while await stream.recv() is not None:
                pass
        except StreamError as exc:  # the agent closes its connection to the app here
            ended.append(exc.reason)

    with pytest.raises(BadGateway, match="not valid HTTP"):
        await asyncio.wait_for(exchange(app), 10)
    await asyncio.sleep(0.1)
    assert ended == ["bad response"]
