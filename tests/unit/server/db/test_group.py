"""GroupWriter: callers that come while a group is written go in the next
one, in order; each returns once its group is written, or raises what that
write raised; a write cancelled at shutdown leaves nobody waiting."""

from __future__ import annotations

import asyncio

import pytest

from edgefleet.server.db.group import GroupWriter


class Recorder:
    """A write that takes one loop turn and keeps the groups it was given."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.groups: list[list[int]] = []
        self.fail_on = fail_on

    async def __call__(self, items: list[int]) -> None:
        await asyncio.sleep(0)
        self.groups.append(items)
        if self.fail_on in items:
            raise RuntimeError(f"cannot write {self.fail_on}")


async def test_those_who_come_while_a_group_is_written_go_in_the_next() -> None:
    write = Recorder()
    writer = GroupWriter(write, "test")
    first = asyncio.ensure_future(writer.submit(0))
    await asyncio.sleep(0)  # the first group is being written
    await asyncio.gather(first, *(writer.submit(i) for i in range(1, 50)))
    assert write.groups == [[0], list(range(1, 50))]


async def test_each_caller_of_a_failed_group_raises_and_the_next_group_is_written() -> None:
    write = Recorder(fail_on=3)
    writer = GroupWriter(write, "test")
    first = asyncio.ensure_future(writer.submit(0))
    await asyncio.sleep(0)  # the first group is being written
    failed = [asyncio.ensure_future(writer.submit(i)) for i in (2, 3)]
    results = await asyncio.gather(first, *failed, return_exceptions=True)
    assert results[0] is None
    assert all(isinstance(r, RuntimeError) for r in results[1:])
    await writer.submit(4)  # the writer outlives a failed group
    assert write.groups == [[0], [2, 3], [4]]


async def test_a_cancelled_write_leaves_nobody_waiting() -> None:
    started = asyncio.Event()

    async def hangs(items: list[int]) -> None:
        started.set()
        await asyncio.Event().wait()

    writer = GroupWriter(hangs, "test")
    waiting = [asyncio.ensure_future(writer.submit(i)) for i in range(3)]
    await started.wait()
    task = writer._writing
    assert task is not None
    task.cancel()
    for waiter in waiting:
        with pytest.raises(asyncio.CancelledError):
            await waiter
