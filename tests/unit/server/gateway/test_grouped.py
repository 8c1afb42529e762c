"""Grouped calls: those that arrive together are handled in one group (split
at ``max_group``), each caller gets its own answer, a failure reaches every
caller of its group and only them, and a caller that left does not stop the rest."""

from __future__ import annotations

import asyncio

import pytest

from edgefleet.server.gateway.grouped import Grouped


class Doubler:
    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, items: list[int]) -> list[int]:
        self.groups.append(items)
        await self.release.wait()
        if 13 in items:
            raise ValueError("unlucky group")
        return [item * 2 for item in items]


async def test_calls_arriving_together_are_one_group_each_with_its_own_answer() -> None:
    handle = Doubler()
    grouped = Grouped(handle, max_group=100, name="test")
    answers = await asyncio.gather(*(grouped(n) for n in range(5)))
    assert answers == [0, 2, 4, 6, 8]
    assert handle.groups == [[0, 1, 2, 3, 4]]


async def test_groups_are_split_at_max_group_and_later_calls_wait_for_the_next() -> None:
    handle = Doubler()
    handle.release.clear()
    grouped = Grouped(handle, max_group=2, name="test")
    first = [asyncio.ensure_future(grouped(n)) for n in range(3)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    later = asyncio.ensure_future(grouped(3))  # arrives while the first group is handled
    handle.release.set()
    assert await asyncio.gather(*first, later) == [0, 2, 4, 6]
    assert handle.groups == [[0, 1], [2, 3]]


async def test_a_failure_reaches_every_caller_of_its_group_and_only_them() -> None:
    handle = Doubler()
    grouped = Grouped(handle, max_group=2, name="test")
    results = await asyncio.gather(*(grouped(n) for n in (13, 1, 2)), return_exceptions=True)
    assert [type(r) for r in results[:2]] == [ValueError, ValueError]
    assert results[2] == 4
    assert await grouped(5) == 10  # the next group is handled as usual


async def test_a_caller_that_left_does_not_stop_the_others() -> None:
    handle = Doubler()
    handle.release.clear()
    grouped = Grouped(handle, max_group=10, name="test")
    leaving = asyncio.ensure_future(grouped(1))
    staying = asyncio.ensure_future(grouped(2))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    leaving.cancel()
    handle.release.set()
    assert await staying == 4
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_answers_that_do_not_match_the_calls_fail_the_callers() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:1]

    grouped = Grouped(short, max_group=10, name="short")
    results = await asyncio.gather(grouped(1), grouped(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
