"""Starlette's WebSocket as a :class:`edgefleet.wire.link.Transport`."""

from __future__ import annotations

import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect

from edgefleet.server.gateway.pacer import FramePacer
from edgefleet.wire.link import TransportClosed


class StarletteTransport:
    def __init__(self, websocket: WebSocket, pacer: FramePacer | None = None) -> None:
        """``pacer``: each frame received waits for its slot (agent links, see
        :mod:`.pacer`); without one, frames are handed over as they come."""
        self.websocket = websocket
        self.pacer = pacer
        self._closed = False

    async def send_text(self, data: str) -> None:
        try:
            await self.websocket.send_text(data)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise TransportClosed(1006, str(exc)) from exc

    async def send_bytes(self, data: bytes) -> None:
        try:
            await self.websocket.send_bytes(data)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise TransportClosed(1006, str(exc)) from exc

    async def receive(self) -> str | bytes:
        try:
            message = await self.websocket.receive()
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise TransportClosed(1006, str(exc)) from exc
        if message["type"] == "websocket.disconnect":
            self._closed = True
            raise TransportClosed(message.get("code", 1006), message.get("reason") or "")
        if self.pacer is not None:
            await self.pacer.slot()
        if message.get("text") is not None:
            return str(message["text"])
        if message.get("bytes") is not None:
            return bytes(message["bytes"])
        raise TransportClosed(1003, "empty frame")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        # "must not raise if it is already closed" (Transport): the client may have
        # hung up (a disconnect, or RuntimeError once Starlette saw it close)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self.websocket.close(code, reason)
