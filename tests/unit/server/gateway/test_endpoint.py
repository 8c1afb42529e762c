"""DirectAgentLine: only the agents' WebSocket skips the routing stack."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope, Send

from edgefleet.server.gateway.endpoint import AGENT_PATH, DirectAgentLine, agent_connect


class Inner:
    """The rest of the app: records what reached it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.seen.append((scope["type"], scope["path"]))


async def _nothing() -> dict[str, Any]:
    return {"type": "websocket.disconnect"}


async def _drop(message: Any) -> None:
    return None


def test_other_requests_go_through_the_app_unchanged() -> None:
    inner = Inner()
    line = DirectAgentLine(inner)
    scopes = [
        {"type": "http", "path": AGENT_PATH},  # a plain GET there is the router's 404/405
        {"type": "websocket", "path": "/api/v1/devices/d1/exec"},
        {"type": "websocket", "path": AGENT_PATH + "/"},
        {"type": "lifespan", "path": ""},
    ]
    for scope in scopes:
        asyncio.run(line(dict(scope), _nothing, _drop))
    assert inner.seen == [(s["type"], s["path"]) for s in scopes]


def test_the_route_it_names_is_the_registered_agent_endpoint() -> None:
    line = DirectAgentLine(Inner())
    assert getattr(line.route, "path", None) == AGENT_PATH
    assert getattr(line.route, "endpoint", None) is agent_connect


def test_a_spent_handshake_keeps_no_headers_where_the_connection_holds_them() -> None:
    """Issue 16: the upgrade request's headers (the device credential among
    them) are emptied in place once read, so neither the scope nor Starlette's
    cached view of them keeps a copy for as long as the agent stays connected."""
    from starlette.websockets import WebSocket

    from edgefleet.server.gateway.endpoint import _credential, _spend_handshake

    raw = [(b"host", b"server:8080"), (b"authorization", b"Bearer dev-secret")]
    scope = {"type": "websocket", "path": AGENT_PATH, "headers": raw}
    websocket = WebSocket(scope, _nothing, _drop)
    assert _credential(websocket) == "dev-secret"  # read (and cached) before the accept
    _spend_handshake(websocket)
    assert scope["headers"] == []  # (Starlette's copy of the list, which its view shares)
    assert "authorization" not in websocket.headers and len(websocket.headers) == 0
