"""The docker runtime without an engine: it says so, it does not raise."""

from __future__ import annotations

import logging
from pathlib import Path

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
