"""Enrollment straight to the gateway (server/gateway/enroll.py, DirectEnroll):
the real app (SQLite, lifespan run). A well-formed enrollment is served
without the routing stack and answered as the route answers; malformed input
goes on to the routing (FastAPI's own 422s), its body intact; a refusal is
the app's own error shape; metrics still name the route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from edgefleet.server.app import create_app
from edgefleet.server.gateway.enroll import DirectEnroll
from edgefleet.server.settings import ServerSettings

TOKEN = "eft_unit-admin-token-0123456789"
FACTS = {"agent_version": "t", "resources": {"hostname": "rack"}, "runtimes": ["sim"]}
PATH = "/api/v1/agent/enroll"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    app = create_app(ServerSettings(data_dir=tmp_path, admin_token=TOKEN))
    async with app.router.lifespan_context(app):  # database, hub
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _key(client: httpx.AsyncClient, **fields: Any) -> str:
    answer = await client.post(
        "/api/v1/provisioning-keys", json=fields, headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["key"])


class Routing:
    """Stands in for the routing behind the middleware: records what reached it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _call(
    app: FastAPI, routing: Routing, method: str, path: str, body: bytes, content_type: bytes
) -> int:
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", content_type)],
        "client": ("127.0.0.1", 5000),
        "scheme": "http",
        "server": ("testserver", 80),
        "app": app,
        "http_version": "1.1",
    }
    chunks = [body[:5], body[5:]]  # a body in two messages is read whole
    sent: list[Message] = []

    async def receive() -> Message:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    await DirectEnroll(routing)(scope, receive, send)
    return int(sent[0]["status"])


async def test_only_a_well_formed_enrollment_skips_the_routing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    key = await _key(client)
    routing = Routing()
    good = b'{"provisioning_key": "%s", "name": "direct", "facts": {}}' % key.encode()
    assert await _call(app, routing, "POST", PATH, good, b"application/json") == 201
    assert routing.bodies == []
    passed_on = [
        ("POST", PATH, b'{"name": "no key"}', b"application/json"),  # not an EnrollIn
        ("POST", PATH, b'{"provisioning_key": ', b"application/json"),  # not JSON
        ("POST", PATH, b"[" * 100_000, b"application/json"),  # too deep for the decoder
        ("POST", PATH, good, b"text/plain"),  # FastAPI would not read it as JSON
        ("GET", PATH, b"", b"application/json"),
        ("POST", "/api/v1/agent/enrollx", good, b"application/json"),
    ]
    for method, path, body, content_type in passed_on:
        assert await _call(app, routing, method, path, body, content_type) == 299
    # the routing got each body whole, as the client sent it
    assert routing.bodies == [body for _, _, body, _ in passed_on]


async def test_answers_are_those_the_route_gave(client: httpx.AsyncClient) -> None:
    key = await _key(client, labels={"tier": "test"}, max_uses=1)
    body = {"provisioning_key": key, "name": "pi", "labels": {"site": "a"}, "facts": FACTS}
    enrolled = await client.post(PATH, json=body)
    assert enrolled.status_code == 201, enrolled.text
    answer = enrolled.json()
    assert set(answer) == {
        "device_id", "name", "project", "project_id", "credential", "heartbeat_interval"
    }  # fmt: skip
    assert answer["name"] == "pi" and answer["credential"].startswith("efd_")
    bearer = {"authorization": f"Bearer {TOKEN}"}
    device = (await client.get(f"/api/v1/devices/{answer['device_id']}", headers=bearer)).json()
    assert device["labels"] == {"site": "a", "tier": "test"}
    used_up = await client.post(PATH, json={**body, "name": "pi2"})  # the key had one use
    assert used_up.status_code == 401 and used_up.headers["www-authenticate"] == "Bearer"
    assert "already used 1 time(s)" in used_up.json()["error"]["message"]
    # malformed input: FastAPI's own 422, through the routing
    missing = await client.post(PATH, json={"name": "x"})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "provisioning_key"]
    metrics = (await client.get("/metrics", headers=bearer)).text
    assert f'{{method="POST",route="{PATH}",status="2xx"}} 1.0' in metrics
    assert f'{{method="POST",route="{PATH}",status="4xx"}} 2.0' in metrics


async def test_the_body_limit_still_bounds_an_enrollment(tmp_path: Path) -> None:
    app = create_app(ServerSettings(data_dir=tmp_path, admin_token=TOKEN, max_body_bytes=4096))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            key = await _key(client)
            big = {"provisioning_key": key, "facts": {"resources": {"hostname": "x" * 8000}}}
            refused = await client.post(PATH, json=big)
            assert refused.status_code == 413
            assert refused.json()["error"]["code"] == "payload_too_large"
            small = await client.post(PATH, json={"provisioning_key": key, "facts": FACTS})
            assert small.status_code == 201
