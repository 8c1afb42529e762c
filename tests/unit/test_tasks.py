"""edgefleet/tasks.py: stopping a group of background tasks, and the loop that
outlives a failing pass (shared by the hub, the scheduler and the agent's jobs)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from edgefleet.tasks import cancel_all, every

log = logging.getLogger("tests.tasks")


async def test_cancel_all_cancels_every_task_before_waiting() -> None:
    finished: list[str] = []

    async def worker(name: str) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            finished.append(name)

    tasks = [asyncio.create_task(worker(n)) for n in ("a", "b", "c")]
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_all(tasks), 5)
    assert sorted(finished) == ["a", "b", "c"]
    assert all(t.cancelled() for t in tasks)


async def test_cancel_all_does_not_hide_a_task_that_crashed() -> None:
    async def crash() -> None:
        raise ValueError("the loop died")

    crashed = asyncio.create_task(crash())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="the loop died"):
        await cancel_all([crashed])


async def test_every_logs_a_failing_pass_and_runs_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    passes: list[int] = []
    third = asyncio.Event()

    async def work() -> None:
        passes.append(len(passes) + 1)
        if len(passes) == 1:
            raise RuntimeError("database hiccup")
        if len(passes) == 3:
            third.set()

    with caplog.at_level(logging.ERROR, logger="tests.tasks"):
        loop = asyncio.create_task(every(0.01, work, log, "presence flush"))
        await asyncio.wait_for(third.wait(), 5)
        await cancel_all([loop])
    assert passes[:3] == [1, 2, 3]
    failures = [r for r in caplog.records if r.message == "presence flush failed"]
    assert len(failures) == 1 and failures[0].exc_info is not None  # once, with the traceback
