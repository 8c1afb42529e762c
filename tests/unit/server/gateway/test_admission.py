"""The gateway's admission of agent connections (pure, with a hand-stepped clock),
and the agent's reading of the wait it is given."""

from __future__ import annotations

import pytest

from edgefleet.agent.connection import retry_after
from edgefleet.server.gateway.admission import MAX_RETRY_AFTER, Admission


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_seconds_worth_is_admitted_then_refusals_book_later_slots() -> None:
    clock = Clock()
    admission = Admission(10, clock=clock)
    assert [admission.admit() for _ in range(10)] == [None] * 10
    waits = [admission.admit() for _ in range(50)]
    assert all(w is not None for w in waits)
    # Booked one tenth of a second apart: 50 refused at 10/s wait up to 5 s,
    # in order, so they come back at the rate they can be admitted.
    assert waits == sorted(waits)  # type: ignore[type-var]
    assert waits[0] == 1 and waits[-1] == 5
    assert admission.refused == 50 and admission.admitted == 10


def test_the_bucket_refills_at_the_rate() -> None:
    clock = Clock()
    admission = Admission(4, clock=clock)
    for _ in range(4):
        assert admission.admit() is None
    assert admission.admit() is not None
    clock.now += 0.5  # two tokens back
    assert admission.admit() is None
    assert admission.admit() is None
    assert admission.admit() is not None


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
