"""The gateway's admission of agent connections (pure, with a hand-stepped clock),
and the agent's reading of the wait it is given."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from edgefleet.agent.connection import retry_after
from edgefleet.server.gateway.admission import (
    MAX_RETRY_AFTER,
    QUIET_AFTER,
    QUIET_EVERY,
    STALE_AFTER,
    Admission,
    lag_interval,
    watch_lag,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_lag_is_read_often_only_while_agents_connect() -> None:
    """Fast readings on a fresh server (a restart's storm comes first) and while
    agents ask in; slow ones once nobody has for QUIET_AFTER seconds."""
    clock = Clock()
    admission = Admission(100, clock=clock)
    assert lag_interval(admission) == 0.05
    clock.now += QUIET_AFTER + 1
    assert lag_interval(admission) == QUIET_EVERY
    assert admission.admit() is None  # one agent asks in: fast again at once
    assert lag_interval(admission) == 0.05
    clock.now += QUIET_AFTER + 1
    assert lag_interval(admission) == 0.05  # its handshake is still in flight
    admission.finished()
    assert lag_interval(admission) == QUIET_EVERY


def test_a_burst_is_admitted_then_refusals_book_later_slots() -> None:
    clock = Clock()
    admission = Admission(40, clock=clock)  # the bucket holds a quarter second: 10
    assert [admission.admit() for _ in range(10)] == [None] * 10
    waits = [admission.admit() for _ in range(200)]
    assert all(w is not None for w in waits)
    # Booked a fortieth of a second apart: 200 refused at 40/s wait up to 5 s,
    # in order, so they come back at the rate they can be admitted.
    assert waits == sorted(waits)  # type: ignore[type-var]
    assert waits[0] == 1 and waits[-1] == 5
    assert admission.refused == 200 and admission.admitted == 10


def test_the_bucket_refills_at_the_rate() -> None:
    clock = Clock()
    admission = Admission(16, clock=clock)
    for _ in range(4):
        assert admission.admit() is None
    assert admission.admit() is not None
    clock.now += 0.125  # two tokens back
    assert admission.admit() is None
    assert admission.admit() is None
    assert admission.admit() is not None


def test_a_lagging_loop_refuses_with_later_slots_and_an_idle_one_admits() -> None:
    """Readings over the lag bound cut the rate to its floor and the bucket with
    it: of a hundred connections a dozen get in and the rest are told to come
    back later (slots booked at the rate it can serve). Readings under the bound
    bring the rate back to the ceiling, where the same hundred all get in."""
    clock = Clock()
    admission = Admission(1000, clock=clock, max_in_flight=10_000)  # the rate alone
    for _ in range(20):
        admission.observe_lag(0.5)  # the loop wakes a sleeper half a second late
        clock.now += 0.05
    assert admission.rate == admission.floor == 50
    answers = [admission.admit() for _ in range(100)]
    waits = [w for w in answers if w is not None]
    assert answers.count(None) == 12  # a quarter second at 50/s
    assert len(waits) == 88 and max(waits) == 2  # 88 at 50/s: up to 1.8 s ahead
    for _ in range(4):  # a stall's reading fades over a few readings
        admission.observe_lag(0.001)
        clock.now += 0.05
    assert admission.lag < admission.lag_bound and admission.rate < 1000
    for _ in range(60):
        admission.observe_lag(0.001)
        clock.now += 0.05
    assert admission.rate == 1000
    clock.now += 5  # the booked slots have passed
    assert [admission.admit() for _ in range(100)] == [None] * 100


def test_unfinished_handshakes_are_bounded_whatever_the_rate() -> None:
    """Handshakes waiting off the loop (for the database) are not lag: past the
    bound on those under way, connections are refused with a wait even with
    tokens to spare; each one finished makes room, and one that never says so
    stops counting after a while."""
    clock = Clock()
    admission = Admission(1000, clock=clock, max_in_flight=3)
    assert [admission.admit() for _ in range(3)] == [None] * 3
    assert admission.in_flight == 3
    refused = admission.admit()
    assert refused is not None and refused >= 1
    admission.finished()
    assert admission.admit() is None
    assert admission.admit() is not None
    clock.now += STALE_AFTER + 1  # three handshakes lost without a word
    assert admission.admit() is None
    assert admission.in_flight == 1


def test_refused_for_handshakes_in_flight_are_booked_at_the_rate_they_are_accepted() -> None:
    """With tokens to spare but the handshakes under way at their bound, the
    bucket's rate would tell everyone "1 s" and have them refused again: slots
    are booked at the bound over the recent handshake time (with headroom)."""
    clock = Clock()
    admission = Admission(400, clock=clock, max_in_flight=10)  # its floor: 20/s
    assert [admission.admit() for _ in range(10)] == [None] * 10
    clock.now += 0.5  # each handshake took half a second: 20/s get through
    for _ in range(10):
        admission.finished()
    assert [admission.admit() for _ in range(10)] == [None] * 10
    waits = [admission.admit() for _ in range(90)]
    # booked at 10 / 0.5 s * 1.5 = 30/s: 90 agents spread over three seconds
    assert waits == sorted(waits)  # type: ignore[type-var]
    assert waits[0] == 1 and waits[-1] == 3
    assert waits.count(1) == 30


def test_refused_before_any_handshake_is_timed_are_booked_at_the_bucket_rate() -> None:
    clock = Clock()
    admission = Admission(1000, clock=clock, max_in_flight=10)
    assert [admission.admit() for _ in range(10)] == [None] * 10
    assert [admission.admit() for _ in range(900)] == [1] * 900  # 1000/s: all within 1 s


async def test_the_watcher_sees_a_blocked_loop_and_an_idle_one() -> None:
    """The real loop: a handler holding it for 800 ms is seen as lag (the rate is
    cut and a crowd is refused with waits); idle readings admit again. (A wide
    bound and a long block: the machine running the tests may be busy.)"""
    admission = Admission(1000, lag_bound=0.25, max_in_flight=10_000)
    watcher = asyncio.create_task(watch_lag(admission, every=0.02))
    try:
        await asyncio.sleep(0.1)
        assert admission.admit() is None
        time.sleep(0.8)  # noqa: ASYNC251 (on purpose: a handler blocking the loop)
        await asyncio.sleep(0.005)  # the watcher's reading, due during the block
        assert admission.lag >= 0.7 and admission.rate <= 700
        # At most 175 in the bucket now (a quarter second at <= 700/s), plus what
        # refills at that rate while a busy machine runs the 300 calls (CI: 176).
        answers = [admission.admit() for _ in range(300)]
        assert answers.count(None) <= 185 and all(w and w >= 1 for w in answers[185:])
        for _ in range(150):  # idle readings again (a busy machine may need a few more)
            await asyncio.sleep(0.02)
            if admission.lag < admission.lag_bound:
                break
        assert admission.lag < admission.lag_bound
        await asyncio.sleep(0.01)  # a token back at the rate climbing again
        assert admission.admit() is None
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


def test_an_idle_loop_admits_up_to_the_ceiling_and_no_more() -> None:
    clock = Clock()
    admission = Admission(200, clock=clock, max_in_flight=10_000)
    admitted = 0
    for _ in range(100):  # five seconds of readings every 50 ms, 20 tries each
        admission.observe_lag(0.002)
        admitted += sum(admission.admit() is None for _ in range(20))
        clock.now += 0.05
    assert admission.rate == 200
    assert 950 <= admitted <= 1000 + 50  # 200/s for 5 s, plus the first burst


def test_waits_are_capped_and_the_queue_recovers() -> None:
    clock = Clock()
    admission = Admission(1, clock=clock)
    assert admission.admit() is None
    waits = [admission.admit() for _ in range(1000)]
    assert max(w or 0 for w in waits) == MAX_RETRY_AFTER
    clock.now += MAX_RETRY_AFTER + 1
    assert admission.backlog_seconds == 0
    assert admission.admit() is None


def test_a_storm_is_summarized_not_logged_per_agent() -> None:
    clock = Clock()
    admission = Admission(1, clock=clock)
    admission.admit()
    clock.now += 10
    assert admission.admit() is None  # refilled
    assert admission.admit() is not None
    first = admission.summary()
    assert first is not None and "1 connections asked to retry" in first
    admission.admit()
    assert admission.summary() is None  # within 5 s of the last line
    clock.now += 6
    assert admission.summary() is not None


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Admission(0)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), ("retry-after=3", 3.0), (" 2.5 ", 2.5), ("100000", 600.0)],
)
def test_agent_reads_the_wait(value: str, seconds: float) -> None:
    assert retry_after(value) == seconds


@pytest.mark.parametrize("value", [None, "", "soon", "-1", "Wed, 21 Oct 2026 07:28:00 GMT"])
def test_agent_ignores_a_wait_it_cannot_read(value: str | None) -> None:
    assert retry_after(value) is None


def test_a_storm_right_after_start_is_told_at_once() -> None:
    """A restarted server that refuses its first agents within seconds of
    starting (and none after) must still say so: the storm would go unseen."""
    clock = Clock()
    admission = Admission(1, clock=clock)
    assert admission.admit() is None
    assert admission.admit() is not None
    said = admission.summary()
    assert said is not None and "1 connections asked to retry" in said
    assert admission.summary() is None  # nothing new refused
