"""The client's one request path against a real HTTP server on loopback:
paths under /api/v1, answers decoded, every 4xx/5xx raised as the matching
error with the server's words, pages followed, streams and downloads, and an
unreachable server reported as ConnectionFailed."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from edgefleet.client import Client
from edgefleet.client.errors import ConnectionFailed, Forbidden, Invalid, NotFound, ServerError

PAGES = {"": ["a", "b"], "c2": ["c", "d"], "c3": ["e"]}
NEXT = {"": "c2", "c2": "c3", "c3": None}


class Api(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict[str, list[str]]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, kind: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.seen.append(("GET", url.path, query))
        if url.path == "/api/v1/events":
            self._json(200, {"items": [{"id": 1, "query": query}], "next": None})
        elif url.path == "/api/v1/items":
            cursor = query.get("cursor", [""])[0]
            items = [{"id": i} for i in PAGES[cursor]]
            self._json(200, {"items": items, "next": NEXT[cursor]})
        elif url.path == "/api/v1/missing":
            self._json(404, {"error": {"message": "device 'x' not found", "field": "device"}})
        elif url.path == "/api/v1/bad":
            self._json(422, {"detail": "selector: cannot parse"})
        elif url.path == "/api/v1/broken":
            self._send(502, b"upstream exploded\n", "text/plain")
        elif url.path == "/api/v1/raw":
            self._send(200, b"\x00\x01", "application/octet-stream")
        elif url.path == "/api/v1/lines":
            self._send(200, b"one\ntwo\n", "text/plain")
        elif url.path == "/api/v1/secret-lines":
            self._json(403, {"error": {"message": "not yours"}})
        elif url.path == "/api/v1/file":
            self._send(200, b"x" * 3000, "application/octet-stream", X_Record_Count="7")
        else:
            self._json(200, {"path": url.path, "query": query})

    def do_DELETE(self) -> None:
        self.seen.append(("DELETE", self.path, {}))
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def client() -> Iterator[Client]:
    Api.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Client(f"http://127.0.0.1:{server.server_address[1]}/", "t0k") as ef:
            yield ef
    finally:
        server.shutdown()
        server.server_close()


def test_paths_go_under_api_v1_and_none_params_are_dropped(client: Client) -> None:
    assert client.get("/echo", a="1", b=None) == {"path": "/api/v1/echo", "query": {"a": ["1"]}}
    assert client.get("/api/other")["path"] == "/api/other"
    assert client.delete("/thing") is None  # 204: nothing to decode
    assert client.get("/raw") == b"\x00\x01"  # not JSON: the bytes


def test_errors_carry_the_servers_words(client: Client) -> None:
    with pytest.raises(NotFound) as missing:
        client.get("/missing")
    assert (missing.value.status, missing.value.message) == (404, "device 'x' not found")
    assert missing.value.field == "device"
    with pytest.raises(Invalid, match="selector: cannot parse"):
        client.get("/bad")
    with pytest.raises(ServerError, match="upstream exploded") as broken:
        client.get("/broken")
    assert broken.value.status == 502


def test_pages_are_followed_and_a_limit_stops_early(client: Client) -> None:
    assert [item["id"] for item in client.paged("/items")] == ["a", "b", "c", "d", "e"]
    Api.seen.clear()
    assert [item["id"] for item in client.paged("/items", limit=3)] == ["a", "b", "c"]
    assert len(Api.seen) == 2  # the third page is never asked for
    assert Api.seen[0][2]["limit"] == ["3"]


def test_filters_named_like_the_helpers_parameters_reach_the_server(client: Client) -> None:
    """``events(kind=…)`` once collided with the list helper's own ``kind``."""
    (event,) = client.events(kind="device.online", path="x", limit=5)
    assert event["query"]["kind"] == ["device.online"]  # type: ignore[typeddict-item]
    assert event["query"]["path"] == ["x"]  # type: ignore[typeddict-item]
    assert client.get("/echo", path="p")["query"] == {"path": ["p"]}


def test_streams_and_downloads(client: Client) -> None:
    assert list(client.stream_lines("/lines")) == ["one", "two"]
    with pytest.raises(Forbidden, match="not yours"):
        list(client.stream_lines("/secret-lines"))
    sink = io.BytesIO()
    totals: list[int | None] = []
    written = client._download(
        "/api/v1/file", {}, sink, lambda _, total: totals.append(total), "x-record-count"
    )
    assert written == 3000 and sink.getvalue() == b"x" * 3000
    assert totals and set(totals) == {7}


def test_an_unreachable_server_is_connection_failed() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        Client(f"http://127.0.0.1:{port}") as ef,
        pytest.raises(ConnectionFailed, match="cannot reach"),
    ):
        ef.health()
    with Client(f"http://127.0.0.1:{port}") as ef, pytest.raises(ConnectionFailed):
        list(ef.stream_lines("/lines"))


def test_the_websocket_url_follows_the_scheme() -> None:
    with Client("https://ef.example/") as secure, Client("http://h:1") as plain:
        assert secure.websocket_url("/x", a=1, b=None) == "wss://ef.example/x?a=1"
        assert plain.websocket_url("/x") == "ws://h:1/x"
