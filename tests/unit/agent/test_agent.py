"""The agent's own life around its parts (agent/agent.py): tasks it spawns
report their failure once, a part that fails to stop does not keep the others
from stopping, and a restart may carry a handover (an upgrade)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from edgefleet.agent.agent import Agent
from edgefleet.agent.part import (
    AddsFacts,
    HandlesCommands,
    HandlesMessages,
    HandlesStreams,
    OnConnected,
    StreamHandler,
)
from edgefleet.agent.parts import DEVICE, build_parts
from edgefleet.agent.settings import AgentSettings
from edgefleet.wire.mux import Stream
from tests.support.agents import agent_context


async def test_a_spawned_task_that_fails_is_logged_once_with_its_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agent = Agent(AgentSettings(state_dir=tmp_path))

    async def hook() -> None:
        raise ValueError("the hook broke")

    with caplog.at_level(logging.ERROR, "edgefleet.agent"):
        task = agent.spawn(hook(), "telemetry.on_connected")
        await asyncio.wait({task})
        await asyncio.sleep(0)  # done callbacks run on the next loop pass
    failed = [r for r in caplog.records if r.getMessage() == "telemetry.on_connected failed"]
    assert len(failed) == 1 and failed[0].exc_info is not None
    assert str(failed[0].exc_info[1]) == "the hook broke"
    assert not agent._tasks  # forgotten once done


async def test_a_part_failing_to_stop_is_logged_and_the_stop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Stubborn:
        async def stop(self) -> None:
            raise OSError("socket already gone")

    with caplog.at_level(logging.ERROR, "edgefleet.agent"):
        await Agent._stop(Stubborn())
    assert [r.getMessage() for r in caplog.records] == ["stopping Stubborn failed"]


def test_a_restart_keeps_its_handover(tmp_path: Path) -> None:
    agent = Agent(AgentSettings(state_dir=tmp_path))
    ran: list[str] = []
    agent.request_restart(lambda: ran.append("switch"))
    assert agent.restart_requested and agent.stopping.is_set()
    assert agent.handover is not None
    agent.handover()
    assert ran == ["switch"]
    plain = Agent(AgentSettings(state_dir=tmp_path))
    plain.request_restart(None)
    assert plain.restart_requested and plain.handover is None


async def test_the_agent_takes_each_parts_phases_as_isinstance_sees_them(tmp_path: Path) -> None:
    """_add_parts asks a part's class (issubclass, cached) instead of the part:
    for every part a device builds, it takes exactly the phases isinstance finds."""
    ctx = await agent_context(tmp_path / "state", local_api=True, logs_ship_interval=5)
    parts = build_parts(ctx, DEVICE)
    agent = Agent(AgentSettings(state_dir=tmp_path / "other"))
    try:
        agent._add_parts(parts)
        assert len(parts) > 5  # every kind of part a device runs
        assert agent._messages == {
            k: v
            for p in parts
            if isinstance(p, HandlesMessages)
            for k, v in p.message_handlers().items()
        }
        assert set(agent._streams) == {
            k for p in parts if isinstance(p, HandlesStreams) for k in p.stream_handlers()
        }
        assert set(agent._commands) == {
            k for p in parts if isinstance(p, HandlesCommands) for k in p.command_handlers()
        }
        assert agent._connected == [p for p in parts if isinstance(p, OnConnected)]
        assert agent._facts_hooks == [p for p in parts if isinstance(p, AddsFacts)]
        assert agent._connected and agent._messages and agent._commands
    finally:
        for part in parts:
            buffer = getattr(part, "buffer", None)
            if buffer is not None:
                buffer.close()


async def test_a_class_without_a_phase_is_not_taken_for_one(tmp_path: Path) -> None:
    class Quiet:
        """Has none of the phases."""

        def helper(self) -> int:
            return 1

    class Streams:
        def stream_handlers(self) -> dict[str, StreamHandler]:
            return {"x": self.serve}

        async def serve(self, stream: Stream) -> None:
            await stream.refuse("no")

    agent = Agent(AgentSettings(state_dir=tmp_path))
    quiet, streams = Quiet(), Streams()
    agent._add_parts([quiet, streams])  # type: ignore[list-item]
    assert agent._streams == {"x": streams.serve}
    assert not agent._messages and not agent._commands and not agent._connected
