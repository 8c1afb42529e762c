"""The agents' lane (gateway/lane.py): an agent's WebSocket is served before
the middleware stack, and nothing else is; the handshake's headers are spent."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.types import Message

from edgefleet.server.app import create_app
from edgefleet.server.gateway.endpoint import AGENT_PATH
from edgefleet.server.gateway.lane import FleetApp
from edgefleet.server.settings import ServerSettings

APP_HOST = b"j1-d1-web-80.apps.example"


async def _nothing() -> dict[str, Any]:
    return {"type": "websocket.disconnect"}


async def _drop(message: Any) -> None:
    return None


def test_the_lane_takes_an_agents_websocket_and_nothing_else() -> None:
    app = FleetApp()
    own = [(b"host", b"fleet.example:8080")]
    assert app.takes({"type": "websocket", "path": AGENT_PATH, "headers": own})
    others = [
        {"type": "http", "path": AGENT_PATH, "headers": own},  # a plain GET: the router's 404/405
        {"type": "websocket", "path": "/api/v1/devices/d1/exec", "headers": own},
        {"type": "websocket", "path": AGENT_PATH + "/", "headers": own},
        {"type": "lifespan", "path": ""},
    ]
    assert not [scope for scope in others if app.takes(scope)]
    # with app hosts: the path on an app's own host is the app's (the host router's)
    app.apps_domain = "apps.example"
    assert not app.takes(
        {"type": "websocket", "path": AGENT_PATH, "headers": [(b"host", APP_HOST)]}
    )
    assert app.takes({"type": "websocket", "path": AGENT_PATH, "headers": own})


@pytest.mark.parametrize(
    ("peer", "believed"),
    [("127.0.0.1", "203.0.113.9"), ("10.0.0.1", "10.0.0.1")],  # a trusted proxy; anyone else
)
async def test_a_trusted_proxys_forwarded_headers_are_believed_and_no_one_elses(
    peer: str, believed: str
) -> None:
    """The app runs uvicorn's proxy-header rewrite itself (uvicorn no longer
    wraps it, a frame fewer per connection): the client and scheme come from
    ``X-Forwarded-*`` only when the peer is a proxy it was told to believe."""
    app = FleetApp()
    app.believe_proxies("127.0.0.1")

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        assert request.client is not None
        return {"client": request.client.host, "scheme": request.url.scheme}

    transport = httpx.ASGITransport(app, client=(peer, 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://fleet.example") as client:
        forwarded = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"}
        answer = (await client.get("/whoami", headers=forwarded)).json()
    scheme = "https" if believed != peer else "http"
    assert answer == {"client": believed, "scheme": scheme}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FleetApp]:
    app = create_app(ServerSettings(data_dir=tmp_path, apps_domain="apps.example"))
    assert isinstance(app, FleetApp)
    async with app.router.lifespan_context(app):  # database, hub
        yield app


def _scope(app: FleetApp, host: bytes, credential: bytes) -> dict[str, Any]:
    return {
        "type": "websocket",
        "path": AGENT_PATH,
        "raw_path": AGENT_PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", host), (b"authorization", b"Bearer " + credential)],
        "client": ("127.0.0.1", 5000),
        "server": ("fleet.example", 8080),
        "scheme": "ws",
        "subprotocols": [],
        "state": {},
    }


async def test_an_agents_connection_holds_no_middleware_frames(app: FleetApp) -> None:
    """Issue 16: the frames suspended under an agent's connection are the
    lane's entry and the endpoint, not the eleven of the middleware stack
    (~3.5 KB per connected device). An unknown credential is answered as
    before (Revoked, close 4401), and the open-WebSocket gauge counts it."""
    sent: list[Message] = []
    callers: list[str] = []
    gauge = app.state.metrics.websockets.labels(AGENT_PATH)

    async def connect() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        if message["type"] == "websocket.accept":
            frame = sys._getframe(1)
            while (
                frame is not None
                and frame.f_code.co_name != "test_an_agents_connection_holds_no_middleware_frames"
            ):
                callers.append(frame.f_code.co_qualname)
                frame = frame.f_back
        if message["type"] == "websocket.send":
            sent.append({**message, "open": gauge._value.get()})
        else:
            sent.append(message)

    await app(_scope(app, b"fleet.example:8080", b"efd_not-a-device"), connect, send)
    endpoint = callers[callers.index("agent_connect") :]
    assert endpoint[:2] == ["agent_connect", "FleetApp.__call__"], callers
    middleware = ("Middleware", "Starlette", "FastAPI", "Fresh", "HostRouter", "ProxyPaths")
    assert not [name for name in endpoint if any(m in name for m in middleware)], callers
    assert app.forwarded is not None  # believed proxies (the default): rewritten, not held
    kinds = [m["type"] for m in sent]
    assert kinds == ["websocket.accept", "websocket.send", "websocket.close"], sent
    assert '"revoked"' in sent[1]["text"] and sent[1]["open"] == 1.0
    assert sent[2]["code"] == 4401
    assert gauge._value.get() == 0.0  # closed: no longer counted


async def test_on_an_apps_host_the_path_is_the_apps(app: FleetApp) -> None:
    """The lane leaves an app's host to the host router, which proxies it:
    no agent handshake happens there, whatever the credential."""
    sent: list[Message] = []

    async def connect() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(_scope(app, APP_HOST, b"efd_not-a-device"), connect, send)
    assert sent and not [m for m in sent if m["type"] == "websocket.send"], sent


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
