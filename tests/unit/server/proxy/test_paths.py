"""``/proxy/…`` straight to the proxy (server/proxy/paths.py): the real app
(SQLite, lifespan run), requests the proxy's routes match are served without
the routing stack, everything else goes on to the routing and is answered
exactly as before, and the metrics still name the route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from edgefleet.server.app import create_app
from edgefleet.server.proxy.paths import ProxyPaths
from edgefleet.server.settings import ServerSettings

TOKEN = "eft_unit-admin-token-0123456789"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    app = create_app(ServerSettings(data_dir=tmp_path, admin_token=TOKEN))
    async with app.router.lifespan_context(app):  # database, hub, grants
        yield app


class Routing:
    """Stands in for the routing stack behind the middleware: says whether it was reached."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def call(app: FastAPI, routing: Routing, method: str, path: str) -> int:
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"a=1",
        "headers": [(b"host", b"testserver"), (b"accept", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "scheme": "http",
        "server": ("testserver", 80),
        "app": app,
        "http_version": "1.1",
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await ProxyPaths(routing)(scope, receive, send)
    return int(sent[0]["status"])


async def test_only_what_the_proxy_routes_match_skips_the_routing(app: FastAPI) -> None:
    routing = Routing()
    # the proxy itself answers: no credential, so 401 (not the routing's 299)
    assert await call(app, routing, "GET", "/proxy/j1/d1/web/8080/index.html") == 401
    assert await call(app, routing, "POST", "/proxy/j1/d1/web/8080/") == 401
    assert routing.paths == []
    passed_on = [
        ("GET", "/proxy/j1/d1/web/8080"),  # the route that redirects to the trailing slash
        ("GET", "/proxy/j1/d1/web/http/x"),  # not a port: the routing's 422
        ("TRACE", "/proxy/j1/d1/web/8080/x"),  # not a method the proxy serves: 405
        ("GET", "/api/v1/devices"),
        ("GET", "/proxyx/j1/d1/web/8080/x"),
    ]
    for method, path in passed_on:
        assert await call(app, routing, method, path) == 299
    assert routing.paths == [path for _, path in passed_on]


async def test_answers_are_those_the_routes_gave(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await _answers(client)


async def _answers(client: httpx.AsyncClient) -> None:
    refused = await client.get("/proxy/j1/d1/web/8080/x", headers={"accept": "application/json"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    signin = await client.get("/proxy/j1/d1/web/8080/x?q=1", headers={"accept": "text/html"})
    assert signin.status_code == 302 and signin.headers["location"].startswith("/login?next=")
    bearer = {"authorization": f"Bearer {TOKEN}"}
    missing = await client.get("/proxy/nojob/d1/web/8080/x", headers=bearer)
    assert missing.status_code == 404, missing.text
    out_of_range = await client.get("/proxy/nojob/d1/web/99999/x", headers=bearer)
    assert out_of_range.status_code == 422  # the proxy's own check (Invalid)
    assert "1 to 65535" in out_of_range.json()["error"]["message"]
    redirect = await client.get("/proxy/j1/d1/web/8080?q=1", follow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["location"] == "/proxy/j1/d1/web/8080/?q=1"
    assert (await client.get("/proxy/j1/d1/web/http/x", headers=bearer)).status_code == 422
    assert (await client.request("TRACE", "/proxy/j1/d1/web/8080/x")).status_code == 405
    metrics = (await client.get("/metrics", headers=bearer)).text
    route = "/proxy/{job}/{device}/{service}/{port}/{path}"
    # the sign-in redirect was answered here, not by the routing: still labelled by its route
    assert f'{{method="GET",route="{route}",status="3xx"}} 1.0' in metrics
