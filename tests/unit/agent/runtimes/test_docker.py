"""The docker runtime without an engine: it says so, it does not raise."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.runtimes.docker import DockerRuntime
from edgefleet.spec.policy import DevicePolicy
from tests.support.procs import free_port


async def test_ping_is_false_and_logged_when_no_engine_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = DockerRuntime(f"tcp://127.0.0.1:{free_port()}", DevicePolicy())
    with caplog.at_level(logging.DEBUG, logger="edgefleet.agent.runtimes.docker"):
        assert await runtime.ping() is False
    assert "does not answer" in caplog.text and "127.0.0.1" in caplog.text


async def test_a_missing_socket_is_named_in_what_the_runtime_says(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = DockerRuntime(f"unix://{tmp_path}/gone.sock", DevicePolicy())
    with caplog.at_level(logging.DEBUG, logger="edgefleet.agent.runtimes.docker"):
        assert await runtime.ping() is False
    assert "gone.sock: the socket does not exist" in caplog.text
    with pytest.raises(RuntimeFailure, match="cannot reach the container engine") as caught:
        await runtime.workloads()
    assert "gone.sock" in caught.value.message


async def test_an_address_the_agent_cannot_use_is_said_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = DockerRuntime("ssh://pi@device", DevicePolicy())
    with caplog.at_level(logging.DEBUG, logger="edgefleet.agent.runtimes.docker"):
        assert await runtime.ping() is False
    assert "TLS and ssh:// are not supported" in caplog.text
    assert await runtime.is_podman() is False


@pytest.mark.podman
async def test_an_exec_past_its_deadline_is_a_timeout_not_a_failure(podman_engine: Any) -> None:
    """Health checks and ``edgefleet exec`` tell a command that ran too long
    (TimeoutError: "timed out after N s", exit 124) from one the engine refused."""
    from tests.support.podman import IMAGE

    runtime = DockerRuntime(podman_engine.url, DevicePolicy())
    body = {"Image": IMAGE, "Cmd": ["sleep", "300"], "Labels": {"io.edgefleet.test": "docker"}}
    client = runtime.engine_api()
    created = await asyncio.to_thread(
        client.containers.create, body, f"ef-exec-{uuid.uuid4().hex[:8]}"
    )
    try:
        await runtime.start(created["Id"])
        with pytest.raises(TimeoutError):
            await runtime.exec(created["Id"], ["sleep", "5"], {}, timeout=0.5)
        with pytest.raises(RuntimeFailure, match="exec failed: "):
            await runtime.exec("ef-no-such-container", ["true"], {}, timeout=10)
        assert await runtime.exec(created["Id"], ["sh", "-c", "echo ok"], {}, 30) == (
            0,
            b"ok\n",
            b"",
        )
    finally:
        await asyncio.to_thread(client.containers.remove, created["Id"], force=True)
