"""HTTP to the engine over its socket, against a scripted engine: bodies framed
as the engine frames them (chunked, cut at odd places), what the request
carries, a socket that is missing, a stream closed under its reader."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from edgefleet.agent.engine.errors import EngineError, EngineUnreachable
from edgefleet.agent.engine.transport import Address, Transport, query, segment
from tests.unit.agent.engine.scripted import HOLD, chunked, head, scripted


def test_a_chunked_body_cut_anywhere_is_read_whole(tmp_path: Path) -> None:
    body = chunked(b'{"Id":', b'"abc"}', b"\n" * 3)
    answer = [
        head("200 OK", "Transfer-Encoding: chunked"),
        *[body[i : i + 3] for i in range(0, len(body), 3)],
    ]
    with scripted(tmp_path, answer) as engine:
        response = Transport(engine.url).request("GET", "/v1.41/containers/x/json")
        assert response.status == 200
        assert response.read() == b'{"Id":"abc"}\n\n\n'
    lines = engine.request_lines()
    assert lines[0] == "GET /v1.41/containers/x/json HTTP/1.1"
    assert "Connection: close" in lines and any(line.startswith("Host: ") for line in lines)


def test_a_file_body_is_sent_with_its_length(tmp_path: Path) -> None:
    context = tmp_path / "context.tar"
    context.write_bytes(b"T" * 200_000)
    answer = [head("200 OK", "Content-Length: 2"), b"{}"]
    with scripted(tmp_path, answer) as engine, context.open("rb") as body:
        response = Transport(engine.url).request("POST", "/build", body=body)
        assert response.read() == b"{}"
    assert "Content-Length: 200000" in engine.request_lines()
    assert engine.requests[0].endswith(b"T" * 200_000)


def test_a_body_cut_short_is_an_error_not_an_end(tmp_path: Path) -> None:
    cut = [head("200 OK", "Transfer-Encoding: chunked"), b"5\r\nhel"]
    with scripted(tmp_path, cut) as engine:
        response = Transport(engine.url).request("GET", "/logs")
        with pytest.raises(EngineError, match="broke off its answer"):
            response.read()


def test_closing_a_stream_from_another_thread_ends_it_quietly(tmp_path: Path) -> None:
    # A followed log: a chunk, then nothing more until the reader closes it.
    endless = [head("200 OK", "Transfer-Encoding: chunked"), b"6\r\nline1\n\r\n", HOLD]
    with scripted(tmp_path, endless) as engine:
        response = Transport(engine.url, timeout=None).request("GET", "/logs", timeout=None)
        chunks = response.chunks()
        assert next(chunks) == b"line1\n"
        threading.Timer(0.2, response.close).start()
        started = time.monotonic()
        assert list(chunks) == []
        assert time.monotonic() - started < 10


def test_a_missing_socket_says_so_and_is_a_connection_error(tmp_path: Path) -> None:
    transport = Transport(f"unix://{tmp_path}/absent.sock")
    with pytest.raises(
        EngineUnreachable, match=r"absent\.sock: the socket does not exist"
    ) as caught:
        transport.request("GET", "/_ping")
    assert isinstance(caught.value, ConnectionError)


def test_hijack_hands_over_the_socket_with_what_came_behind_the_101(tmp_path: Path) -> None:
    switched = head("101 UPGRADED", "Connection: Upgrade", "Upgrade: tcp") + b"\x01\x00\x00\x00"
    with scripted(tmp_path, [switched, b"\x00\x00\x00\x02hi"]) as engine:
        status, error, sock, leftover = Transport(engine.url).hijack(
            "POST", "/exec/e/start", body=b"{}"
        )
        assert (status, error) == (200, b"")  # a 101 counts as success
        data = leftover
        while len(data) < 10:
            data += sock.recv(100)
        sock.sendall(b"stdin bytes")
        sock.close()
    assert data == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    lines = engine.request_lines()
    assert "Connection: Upgrade" in lines and "Upgrade: tcp" in lines
    assert engine.after[0] == b"stdin bytes"


def test_hijack_refused_returns_the_engines_words(tmp_path: Path) -> None:
    refused = [head("409 Conflict", "Content-Length: 32"), b'{"message":"container not runni"}']
    with scripted(tmp_path, refused) as engine:
        status, error, _sock, _ = Transport(engine.url).hijack("POST", "/exec/e/start", body=b"{}")
    assert status == 409 and b"not runni" in error


def test_addresses_the_agent_takes_and_those_it_refuses() -> None:
    assert Address.parse("unix:///run/podman/podman.sock").path == "/run/podman/podman.sock"
    assert Address.parse("/var/run/docker.sock").path == "/var/run/docker.sock"
    tcp = Address.parse("tcp://10.0.0.2:2375")
    assert (tcp.path, tcp.host, tcp.port) == (None, "10.0.0.2", 2375)
    assert Address.parse("http://[::1]:2375").host == "::1"
    for refused in ("ssh://pi@device", "https://engine:2376", "tcp://nohost"):
        with pytest.raises(EngineError):
            Address.parse(refused)


def test_query_and_path_segments() -> None:
    assert query({"all": True, "v": False, "t": 5, "name": None}) == "?all=1&v=0&t=5"
    assert (
        query({"filters": {"label": ["a=b"]}}) == "?filters=%7B%22label%22%3A+%5B%22a%3Db%22%5D%7D"
    )
    assert query({"name": None}) == "" and query(None) == ""
    assert segment("reg:5000/p/app:1") == "reg%3A5000%2Fp%2Fapp%3A1"
