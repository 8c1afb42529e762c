"""The agent's own life around its parts (agent/agent.py): tasks it spawns
report their failure once, a part that fails to stop does not keep the others
from stopping, and a restart may carry a handover (an upgrade)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from edgefleet.agent.agent import Agent
from edgefleet.agent.settings import AgentSettings


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
