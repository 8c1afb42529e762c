"""uvicorn's sans-I/O WebSocket protocol, with less kept per connection.

Every connected agent holds one of these for months. Counted on a server with
1,000 sim agents (gc objects by type, issue 16), uvicorn's protocol kept per
connection an :class:`asyncio.Queue` of received events (three deques of
~0.7 KB: the items, getters that wait, putters that never exist since the
queue is unbounded), an :class:`asyncio.Event` for write flow control (one
more deque), and the upgrade request and its answer with their headers, which
are spent once the handshake is done. Here the queue is an :class:`Inbox`
(a list, and a future only while the app waits), the event a
:class:`~edgefleet.wire.link.Flag`, and the handshake's request and answer are
dropped after the accept (the request's headers emptied); uvicorn's
attributes live in slots, not a per-instance dict. Frames, limits
(``ws_max_size``), close codes and flow control are uvicorn's, unchanged;
this applies to every WebSocket the server serves (agents, exec,
port-forward, event streams).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn._types import ASGIReceiveEvent, ASGISendEvent
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from edgefleet.wire.link import Flag


class Inbox:
    """What uvicorn's protocol asks of its receive queue (``put_nowait``,
    ``get``, ``empty``), unbounded like its queue, without its three deques."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[ASGIReceiveEvent] = []
        self._waiters: list[asyncio.Future[None]] | None = None

    def put_nowait(self, item: ASGIReceiveEvent) -> None:
        self._items.append(item)
        self._wake_one()

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> ASGIReceiveEvent:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if self._items:  # perhaps woken for an item it will not take now
                    self._wake_one()
                raise
            finally:
                if self._waiters is not None:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
                    if not self._waiters:
                        self._waiters = None
        return self._items.pop(0)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return


UVICORN_ATTRIBUTES = (
    *("config", "app", "loop", "logger", "root_path", "asgi_version", "app_state"),
    *("connections", "tasks", "default_headers", "transport", "server", "client"),
    *("scheme", "queue", "handshake_initiated", "handshake_complete", "close_sent"),
    *("disconnected", "close_timer", "close_timeout", "initial_response", "conn"),
    *("read_paused", "writable", "ping_interval", "ping_timeout", "ping_timer"),
    *("pong_timer", "pending_ping_payload", "ping_sent_at", "last_ping_rtt", "frames"),
    *("curr_msg_data_type", "request", "response", "scope"),
)
"""What uvicorn's protocol keeps on each instance. Over 30 names, so CPython
gives every instance a dict of its own (~1.6 KB) instead of one sharing the
class's keys; as slots they take 8 bytes each. Data attributes only (a slot
would hide a method of the same name); one uvicorn adds later still works,
in the instance dict (a unit test lists any)."""


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    __slots__ = UVICORN_ATTRIBUTES

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.queue = Inbox()  # type: ignore[assignment]  # the same three methods
        self.writable = Flag()  # type: ignore[assignment]  # set, clear, wait
        self.writable.set()

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # Spent: only an accept reads them, and the handshake is done. The
            # request's headers are emptied too: websockets' parser keeps the
            # request in a local for as long as the connection lasts (the app
            # has its own copy of them in the scope).
            self.request.headers.clear()
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
