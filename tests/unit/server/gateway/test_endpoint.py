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
