"""The agent's shared HTTP loop (agent/http_server.py), served for real on a
TCP port and a Unix socket: keep-alive, 100-continue, JSON and streamed
answers, refusals with their headers, a handler's bug as a 500, the head limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from edgefleet.agent.data.http import Server
from edgefleet.agent.http_server import Answer, HttpError, Request, Response, Streamed
from edgefleet.agent.local.http import UnixServer, bind_socket


async def handler(request: Request) -> Answer:
    if request.path == "/echo":
        body = await request.read(1 << 20)
        return Response(201, {"size": len(body), "peer": request.peer, "q": request.query})
    if request.path == "/busy":
        raise HttpError(507, "full", {"retry-after": "10"})
    if request.path == "/lines":

        async def lines() -> AsyncIterator[bytes]:
            for n in range(3):
                yield f"line {n}\n".encode()

        return Streamed(200, lines())
    raise RuntimeError("a bug in the handler")


@pytest.fixture
async def tcp() -> AsyncIterator[str]:
    server = Server(handler, lambda peer: peer == "127.0.0.1")
    port = await server.listen("127.0.0.1", 0)
    yield f"http://127.0.0.1:{port}"
    await server.close()


async def test_tcp_answers_json_keeps_alive_and_says_continue(tcp: str) -> None:
    async with httpx.AsyncClient() as http:
        big = b"x" * 5000
        one = await http.post(f"{tcp}/echo?a=1", content=big, headers={"expect": "100-continue"})
        assert one.status_code == 201
        assert one.json() == {"size": 5000, "peer": "127.0.0.1", "q": {"a": "1"}}
        two = await http.post(f"{tcp}/echo", content=b"")
        assert two.json()["size"] == 0
        busy = await http.get(f"{tcp}/busy")
        assert busy.status_code == 507 and busy.headers["retry-after"] == "10"
        assert busy.json() == {"error": "full", "status": 507}
        bug = await http.get(f"{tcp}/anything")
        assert bug.status_code == 500
        assert bug.json()["error"] == "internal error: a bug in the handler"


async def test_tcp_refuses_a_peer_it_does_not_allow() -> None:
    server = Server(handler, lambda peer: False)
    port = await server.listen("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.TransportError):
                await http.get(f"http://127.0.0.1:{port}/echo")
    finally:
        await server.close()


async def test_unix_socket_streams_lines_and_bounds_the_head(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    server = UnixServer(handler, max_body=1024)
    await server.listen(bind_socket(path, None))
    try:
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(path))) as http:
            lines = await http.get("http://local/lines")
            assert lines.status_code == 200 and lines.text == "line 0\nline 1\nline 2\n"
            echo = await http.post("http://local/echo", content=b"abc")
            assert echo.json()["peer"] == "unix"
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(b"GET /echo HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 20000 + b"\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.read(4096), 5)
        assert head.startswith(b"HTTP/1.1 431 ")
        writer.close()
    finally:
        await server.close()
