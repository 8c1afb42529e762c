"""The docker runtime without an engine: it says so, it does not raise."""

from __future__ import annotations

import logging

import pytest

from edgefleet.agent.runtimes.docker import DockerRuntime
from edgefleet.spec.policy import DevicePolicy
from tests.support.procs import free_port


async def test_ping_is_false_and_logged_when_no_engine_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # TCP, not a missing unix socket: the SDK leaks the socket of a failed unix connect.
    runtime = DockerRuntime(f"tcp://127.0.0.1:{free_port()}", DevicePolicy())
    with caplog.at_level(logging.DEBUG, logger="edgefleet.agent.runtimes.docker"):
        assert await runtime.ping() is False
    assert "does not answer" in caplog.text and "127.0.0.1" in caplog.text
