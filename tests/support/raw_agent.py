"""Speaking the agent protocol by hand over a WebSocket, for attack tests that
play a device (a forged, replayed or oversized message no real agent sends)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from websockets.sync.client import ClientConnection

from edgefleet.wire.messages import DeviceFacts, Hello, Message, decode

M = TypeVar("M", bound=Message)


def say_hello(ws: ClientConnection) -> None:
    """Send an empty hello and wait for the server's welcome."""
    ws.send(Hello(facts=DeviceFacts()).model_dump_json())
    answer(ws, Message, lambda m: m.type == "welcome", timeout=10, what="no welcome")


def answer(
    ws: ClientConnection,
    kind: type[M],
    matches: Callable[[M], bool] = lambda _m: True,
    *,
    timeout: float = 20,
    what: str = "no acknowledgement",
) -> M:
    """The first text message of ``kind`` that ``matches``, skipping the rest."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = ws.recv(timeout=timeout)
        if isinstance(frame, str):
            message = decode(frame)
            if isinstance(message, kind) and matches(message):
                return message
    raise AssertionError(what)
