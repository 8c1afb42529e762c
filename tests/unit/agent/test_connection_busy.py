"""The agent's connection against a server that refuses it with close code 4503
(over its admission rate) several times in a row: a real WebSocket server on
loopback, the agent's own client. It keeps coming back to the same server with
the same credential, treats none of it as a failure or a revocation (nothing
that would make it, or the simulator, enroll again), and is welcomed in the end."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from websockets.asyncio.server import ServerConnection, serve

from edgefleet.agent.connection import Connection
from edgefleet.agent.state import Identity
from edgefleet.wire.messages import DeviceFacts, Heartbeat, Hello, Message, Welcome, decode

REFUSALS = 3


async def test_an_agent_refused_with_4503_keeps_trying_and_never_reenrolls() -> None:
    seen: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append(ws.request.headers["Authorization"] if ws.request else "")
        if len(seen) <= REFUSALS:
            await ws.close(4503, "retry-after=0")  # read as the minimum wait, 1 s
            return
        hello = decode(await ws.recv())
        assert isinstance(hello, Hello)
        welcome = Welcome(
            device_id="d1",
            name="n",
            project="p",
            heartbeat_interval=30,
            server_time=datetime.now(UTC),
        )
        await ws.send(welcome.model_dump_json())
        await ws.wait_closed()

    async def nothing(message: Message) -> None:
        return None

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        identity = Identity(
            device_id="d1",
            credential="efd_secret",
            name="n",
            project="p",
            servers=[f"http://127.0.0.1:{port}"],
        )
        connection = Connection(
            identity,
            hello=lambda: Hello(facts=DeviceFacts()),
            on_message=nothing,
            on_stream=None,
            heartbeat=lambda: Heartbeat(),
            heartbeat_interval=None,
            reconnect_cap=20,
            ssl_context=None,
        )
        runner = asyncio.create_task(connection.run())
        try:
            await asyncio.wait_for(connection.connected.wait(), 30)
            assert not runner.done()  # no revocation, no error: still running
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
    assert seen == ["Bearer efd_secret"] * (REFUSALS + 1)  # same server, same credential
    assert connection.backoff.attempt == 0  # refusals are not failures
    assert connection.backoff.refusals == 0  # and the welcome starts them over
