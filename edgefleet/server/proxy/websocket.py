"""WebSocket to the app over a stream: the client's socket is terminated by
uvicorn, the app's is spoken with wsproto over the stream, and messages are
relayed between them (with their text/binary kind and close codes)."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError

from edgefleet.wire.mux import Stream, StreamError

HANDSHAKE_TIMEOUT = 30.0


async def forward(
    websocket: WebSocket, stream: Stream, target: str, host: str, headers: list[tuple[str, str]]
) -> None:
    ws = WSConnection(ConnectionType.CLIENT)
    subprotocols = [
        p.strip()
        for p in websocket.headers.get("sec-websocket-protocol", "").split(",")
        if p.strip()
    ]
    await stream.send(
        ws.send(
            Request(
                host=host,
                target=target,
                subprotocols=subprotocols,
                extra_headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            )
        )
    )

    async def handshake() -> AcceptConnection | RejectConnection:
        while True:
            data = await stream.recv()
            if data is None:
                raise StreamError("the app closed the connection during the WebSocket handshake")
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, (AcceptConnection, RejectConnection)):
                    return event

    try:
        answer = await asyncio.wait_for(handshake(), HANDSHAKE_TIMEOUT)
    except (TimeoutError, StreamError) as exc:
        await websocket.close(1011, f"app unreachable: {exc}"[:100])
        return
    if isinstance(answer, RejectConnection):
        await websocket.close(1011, f"the app refused the WebSocket (HTTP {answer.status_code})")
        return
    await websocket.accept(subprotocol=answer.subprotocol)

    async def client_to_app() -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    code = message.get("code", 1000)
                    # the app's side may be gone or closing already: then there is no one to tell
                    with contextlib.suppress(StreamError, LocalProtocolError):
                        await stream.send(ws.send(CloseConnection(code=code)))
                    return
                if message.get("text") is not None:
                    await stream.send(ws.send(TextMessage(data=message["text"])))
                elif message.get("bytes") is not None:
                    await stream.send(ws.send(BytesMessage(data=message["bytes"])))
        except (StreamError, WebSocketDisconnect, RuntimeError):
            return

    async def app_to_client() -> int:
        text_parts: list[str] = []
        byte_parts: list[bytes] = []
        while True:
            data = await stream.recv()
            if data is None:
                return 1006
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, Message):
                    if isinstance(event, TextMessage):
                        text_parts.append(event.data)
                        if event.message_finished:
                            await websocket.send_text("".join(text_parts))
                            text_parts.clear()
                    elif isinstance(event, BytesMessage):
                        byte_parts.append(bytes(event.data))
                        if event.message_finished:
                            await websocket.send_bytes(b"".join(byte_parts))
                            byte_parts.clear()
                elif isinstance(event, Ping):
                    await stream.send(ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    with contextlib.suppress(StreamError, LocalProtocolError):  # as above
                        await stream.send(ws.send(event.response()))
                    return event.code
                elif isinstance(event, RejectData):
                    continue

    upstream = asyncio.create_task(client_to_app())
    code = 1000
    try:
        code = await app_to_client()
    except (StreamError, RuntimeError, WebSocketDisconnect):
        code = 1011
    finally:
        upstream.cancel()
        await stream.reset("websocket closed")  # idempotent; never raises
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the client left first
            await websocket.close(code if 1000 <= code < 5000 and code != 1006 else 1000)
