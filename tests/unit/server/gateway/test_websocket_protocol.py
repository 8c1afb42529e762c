"""The server's WebSocket protocol (uvicorn's sans-I/O one, keeping less per
connection): its inbox hands every event to exactly one waiter, in order; on a
real uvicorn it echoes text and binary frames, passes the app's close code
through, closes a peer whose message is over ``ws_max_size`` with 1009 (a
hostile peer cannot make it buffer more), and drops the spent handshake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from edgefleet.server.gateway.websocket_protocol import Inbox, LeanWebSocketProtocol
from tests.support.procs import free_port

MAX_SIZE = 4096
WAIT = 5.0


async def test_the_inbox_hands_events_in_order_one_waiter_each() -> None:
    inbox = Inbox()
    assert inbox.empty()
    first = asyncio.ensure_future(inbox.get())
    second = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    assert not first.done() and not second.done()
    inbox.put_nowait({"type": "websocket.receive", "text": "a"})
    inbox.put_nowait({"type": "websocket.receive", "text": "b"})
    got = await asyncio.wait_for(asyncio.gather(first, second), WAIT)
    assert sorted(str(event.get("text")) for event in got) == ["a", "b"]
    assert inbox.empty()


async def test_an_event_for_a_cancelled_waiter_goes_to_the_next() -> None:
    inbox = Inbox()
    leaving = asyncio.ensure_future(inbox.get())
    staying = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})  # wakes `leaving` ...
    leaving.cancel()  # ... which leaves before it takes it
    assert (await asyncio.wait_for(staying, WAIT))["type"] == "websocket.disconnect"
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Echo frames; "close" is answered with close code 4401."""
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        if event.get("text") == "close":
            await send({"type": "websocket.close", "code": 4401, "reason": "revoked"})
            return
        await send(
            {"type": "websocket.send", "text": event.get("text"), "bytes": event.get("bytes")}
        )


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, uvicorn.Server]]:
    port = free_port()
    config = uvicorn.Config(
        _echo,
        port=port,
        ws=LeanWebSocketProtocol,
        ws_max_size=MAX_SIZE,
        ws_ping_interval=None,
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        yield f"ws://127.0.0.1:{port}/ws", server
    finally:
        server.should_exit = True
        await serving


async def test_frames_echo_and_the_spent_handshake_is_dropped(
    served: tuple[str, uvicorn.Server],
) -> None:
    url, server = served
    async with connect(url) as ws:
        await ws.send("hello")
        assert await asyncio.wait_for(ws.recv(), WAIT) == "hello"
        await ws.send(b"\x01\x02" * 100)
        assert await asyncio.wait_for(ws.recv(), WAIT) == b"\x01\x02" * 100
        held = [c for c in server.server_state.connections if isinstance(c, LeanWebSocketProtocol)]
        assert len(held) == 1
        assert isinstance(held[0].queue, Inbox)
        assert held[0].request is None and held[0].response is None
        # websockets' frame parser still holds the upgrade request, emptied
        kept = held[0].conn.parser.gi_frame.f_locals.get("request")
        assert isinstance(kept, Request) and not kept.headers
        await ws.send("after")
        assert await asyncio.wait_for(ws.recv(), WAIT) == "after"


async def test_the_apps_close_code_reaches_the_peer(served: tuple[str, uvicorn.Server]) -> None:
    url, _ = served
    async with connect(url) as ws:
        await ws.send("close")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "revoked")


async def test_a_message_over_the_size_limit_is_refused_with_1009(
    served: tuple[str, uvicorn.Server],
) -> None:
    url, _ = served
    async with connect(url, max_size=None) as ws:
        await ws.send(b"x" * (MAX_SIZE + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    # and the server is still serving the next peer
    async with connect(url) as ws:
        await ws.send("still here")
        assert await asyncio.wait_for(ws.recv(), WAIT) == "still here"


async def test_a_connection_keeps_uvicorns_attributes_in_slots(
    served: tuple[str, uvicorn.Server],
) -> None:
    """Issue 16: over 30 attributes gave every connection a dict of its own
    (~1.6 KB); whatever uvicorn sets, at start or during the handshake, is in
    a slot (a name listed here means UVICORN_ATTRIBUTES needs it)."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    from edgefleet.server.gateway.websocket_protocol import UVICORN_ATTRIBUTES

    assert [n for n in UVICORN_ATTRIBUTES if hasattr(WebSocketsSansIOProtocol, n)] == []
    url, server = served
    async with connect(url) as ws:
        await ws.send("hello")
        assert await asyncio.wait_for(ws.recv(), WAIT) == "hello"
        held = [c for c in server.server_state.connections if isinstance(c, LeanWebSocketProtocol)]
        assert len(held) == 1
        assert list(vars(held[0])) == []
        assert held[0].scope["type"] == "websocket" and held[0].handshake_complete
