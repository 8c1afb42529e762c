"""The engine client: its API version asked once and carried by every path, an
engine too old refused in words; then, on the real Podman engine of the test
session, what the agent relies on: 404s told apart, a container's logs
followed and closed, an exec fed on stdin, a TTY exec resized."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgefleet.agent.engine import EngineClient, EngineError, ImageNotFound, NotFound
from tests.unit.agent.engine.scripted import head, scripted


def json_answer(body: bytes) -> list[bytes]:
    return [head("200 OK", "Content-Type: application/json", f"Content-Length: {len(body)}"), body]


def test_the_api_version_is_asked_once_and_prefixes_every_path(tmp_path: Path) -> None:
    version = json_answer(b'{"ApiVersion":"1.41","Components":[{"Name":"Podman Engine"}]}')
    with scripted(tmp_path, version, json_answer(b"[]"), json_answer(b"[]")) as engine:
        client = EngineClient(engine.url)
        assert client.containers.list(all=True, filters={"label": ["a=b"]}) == []
        assert client.networks.list(names=["n"]) == []
    paths = [engine.request_lines(i)[0] for i in range(3)]
    assert paths[0] == "GET /version HTTP/1.1"
    assert paths[1].startswith("GET /v1.41/containers/json?all=1&filters=")
    assert paths[2].startswith("GET /v1.41/networks?filters=%7B%22name%22")


def test_an_engine_too_old_is_refused_in_words(tmp_path: Path) -> None:
    too_old = json_answer(b'{"ApiVersion":"1.24"}')
    refused = pytest.raises(EngineError, match=r"speaks API version 1\.24; the agent needs 1\.30")
    with scripted(tmp_path, too_old) as engine, refused:
        EngineClient(engine.url).containers.inspect("x")


@pytest.fixture
def container(podman_engine: Any) -> Iterator[tuple[EngineClient, str]]:
    from tests.support.podman import IMAGE

    client = EngineClient(podman_engine.url)
    script = "echo out1; echo err1 >&2; echo out2; while sleep 0.2; do echo tick; done"
    body = {"Image": IMAGE, "Cmd": ["sh", "-c", script], "Labels": {"io.edgefleet.test": "engine"}}
    name = f"ef-engine-{uuid.uuid4().hex[:8]}"
    found = client.containers.create(body, name)
    client.containers.start(found["Id"])
    try:
        yield client, found["Id"]
    finally:
        client.containers.remove(found["Id"], volumes=True, force=True)


@pytest.mark.podman
def test_absent_objects_are_told_apart(podman_engine: Any) -> None:
    client = EngineClient(podman_engine.url)
    assert client.ping() and client.api_version.startswith("1.")
    with pytest.raises(ImageNotFound):
        client.images.inspect("localhost/ef-absent:1")
    with pytest.raises(NotFound) as caught:
        client.containers.inspect("ef-absent-container")
    assert type(caught.value) is NotFound and "no such container" in caught.value.explanation


@pytest.mark.podman
def test_logs_are_demultiplexed_followed_and_closed(container: tuple[EngineClient, str]) -> None:
    client, container_id = container
    stream = client.containers.logs(container_id, follow=True, tail=None, timestamps=False)
    seen: list[bytes] = []
    for payload in stream:
        seen.append(payload)
        if payload == b"tick\n":
            threading.Timer(0.1, stream.close).start()
        if len(seen) > 50:
            pytest.fail("closing the followed stream did not end it")
    assert sorted(seen[:3]) == [b"err1\n", b"out1\n", b"out2\n"]  # both streams, in any order
    assert b"\x01\x00\x00\x00" not in b"".join(seen)  # no frame headers left in
    stamped = client.containers.logs(container_id, follow=False, tail=1)
    assert b"".join(stamped).split(b" ", 1)[0].startswith(b"20")  # RFC 3339 timestamps


@pytest.mark.podman
def test_an_exec_reads_stdin_and_reports_its_exit(container: tuple[EngineClient, str]) -> None:
    client, container_id = container
    exec_id = client.execs.create(
        container_id, ["sh", "-c", "cat; echo bye >&2; exit 3"], stdin=True
    )
    started = client.execs.start(exec_id, tty=False)
    started.sock.sendall(b"fed on stdin\n")
    started.sock.shutdown(socket.SHUT_WR)
    from edgefleet.agent.engine.execs import read_to_end
    from edgefleet.agent.engine.streams import collect

    out, err = collect(read_to_end(started, client.url))
    started.sock.close()
    assert (out, err) == (b"fed on stdin\n", b"bye\n")
    assert client.execs.inspect(exec_id)["ExitCode"] == 3
    quick = client.execs.create(
        container_id, ["sh", "-c", "echo $GREETING"], env={"GREETING": "hi"}
    )
    assert client.execs.run(quick) == (b"hi\n", b"")


@pytest.mark.podman
def test_a_tty_exec_is_resized(container: tuple[EngineClient, str]) -> None:
    from edgefleet.agent.execs import DockerExec, ExecRequest

    client, container_id = container

    async def session() -> tuple[bytes, int]:
        request = ExecRequest(argv=["sh"], env={}, tty=True, cols=100, rows=30)
        started = await DockerExec.start(client.execs, container_id, request)
        await started.write(b"stty size; exit 5\n")
        output = b""
        while (chunk := await started.read()) is not None:
            output += chunk[1]
        return output, await started.wait()

    output, code = asyncio.run(asyncio.wait_for(session(), 60))
    assert b"30 100" in output and code == 5
