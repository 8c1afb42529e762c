"""The frame pacer: past its slots in one turn of the event loop, links wait
for later turns in the order they asked; every one gets through, a link that
left is skipped, a lone link never waits, and an idle pacer schedules nothing."""

from __future__ import annotations

import asyncio
import collections

import pytest

from edgefleet.server.gateway.pacer import FramePacer


class Turns:
    """Counts the event loop's turns: a callback scheduled with call_soon runs
    in the next turn, so one that schedules itself again runs once per turn."""

    def __init__(self) -> None:
        self.now = 0
        self._stopped = False
        asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self.now += 1
        if not self._stopped:
            asyncio.get_running_loop().call_soon(self._tick)

    def stop(self) -> None:
        self._stopped = True


async def test_a_crowd_is_let_through_a_bounded_number_per_turn_in_the_order_it_asked() -> None:
    pacer = FramePacer(per_turn=10)
    turns = Turns()
    granted: list[tuple[int, int]] = []  # (who, turn)

    async def link(who: int) -> None:
        await pacer.slot()
        granted.append((who, turns.now))

    await asyncio.gather(*(link(i) for i in range(200)))
    turns.stop()
    assert sorted(who for who, _ in granted) == list(range(200))
    assert [who for who, _ in granted] == list(range(200)), "not in the order they asked"
    per_turn = collections.Counter(turn for _, turn in granted)
    # those let through in a turn run in the next, beside that turn's fresh ones
    assert max(per_turn.values()) <= 2 * pacer.per_turn, per_turn
    assert len(per_turn) >= 200 // (2 * pacer.per_turn)
    assert pacer.deferred >= 200 - pacer.per_turn
    assert pacer.frames == 200


async def test_a_lone_link_asking_once_per_turn_never_waits() -> None:
    pacer = FramePacer(per_turn=1)
    for _ in range(50):
        await pacer.slot()
        await asyncio.sleep(0)  # the link's next frame comes in a later turn
    assert pacer.deferred == 0
    assert pacer.frames == 50


async def test_a_link_that_left_while_waiting_is_skipped_and_takes_no_slot() -> None:
    pacer = FramePacer(per_turn=1)
    tasks = [asyncio.ensure_future(pacer.slot()) for _ in range(3)]
    await asyncio.sleep(0)  # one passes; two wait for later turns
    assert pacer.waiting == 2
    first, leaving, staying = tasks
    assert first.done() and not leaving.done() and not staying.done()
    leaving.cancel()
    await asyncio.sleep(0)  # the next turn's one slot goes to the link still waiting
    await asyncio.sleep(0)
    assert leaving.cancelled() and staying.done() and pacer.waiting == 0


async def test_an_idle_pacer_stops_scheduling_turns() -> None:
    pacer = FramePacer(per_turn=3)
    await asyncio.gather(*(pacer.slot() for _ in range(10)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert pacer.quiet


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_calm_comes_back_only_a_hold_after_frames_last_waited() -> None:
    clock = Clock()
    pacer = FramePacer(per_turn=2, hold=20.0, clock=clock)
    assert pacer.calm()
    await asyncio.gather(*(pacer.slot() for _ in range(5)))  # three wait for later turns
    assert not pacer.calm()
    clock.now += 19.0
    assert not pacer.calm()  # nothing waited since, but the hold is not over
    clock.now += 1.0
    assert pacer.calm()
    for _ in range(3):
        await asyncio.sleep(0)  # the turns that give the slots back
    await pacer.slot()
    assert pacer.calm()  # a frame that found room is no burst


async def test_a_burst_of_messages_sent_to_agents_is_busy_before_any_reply() -> None:
    """A fan-out's desired states went out; the reports have not made anything
    wait yet, but they are coming."""
    clock = Clock()
    pacer = FramePacer(per_turn=2, hold=20.0, clock=clock)
    pacer.sent += 2  # a couple of commands: no burst
    assert pacer.calm()
    pacer.sent += 3
    assert not pacer.calm()
    clock.now += 10.0
    assert not pacer.calm()
    clock.now += 10.0
    assert pacer.calm()


def test_a_pacer_needs_at_least_one_slot_per_turn() -> None:
    with pytest.raises(ValueError, match="per_turn"):
        FramePacer(per_turn=0)


class Frames:
    """What the agent transport asks of Starlette's WebSocket: frames, one per receive."""

    async def receive(self) -> dict[str, str]:
        return {"type": "websocket.receive", "text": "frame"}


async def test_an_agent_transport_hands_over_each_frame_only_in_its_slot() -> None:
    from typing import cast

    from starlette.websockets import WebSocket

    from edgefleet.server.gateway.transport import StarletteTransport

    pacer = FramePacer(per_turn=1)
    links = [StarletteTransport(cast(WebSocket, Frames()), pacer) for _ in range(3)]
    frames = await asyncio.gather(*(link.receive() for link in links))
    assert frames == ["frame"] * 3
    assert pacer.deferred == 2  # one slot a turn: two frames waited for later turns
    unpaced = StarletteTransport(cast(WebSocket, Frames()))  # the CLI's and browsers'
    assert await unpaced.receive() == "frame" and pacer.deferred == 2
