"""The per-replica throttle and stream slots, with a clock stepped by hand."""

from __future__ import annotations

import pytest

from edgefleet.server.throttle import Slots, SlotsFull, Throttle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_gets_its_capacity_then_waits_for_one_token() -> None:
    clock = FakeClock()
    throttle = Throttle(5, 60.0, clock=clock)
    for _ in range(5):
        assert throttle.retry_after("alice") is None
        throttle.spend("alice")
    # Empty: one token comes back every 60/5 = 12 s.
    assert throttle.retry_after("alice") == 12
    clock.now += 11.5
    assert throttle.retry_after("alice") == 1
    clock.now += 0.5
    assert throttle.retry_after("alice") is None
    throttle.spend("alice")
    assert throttle.retry_after("alice") == 12


def test_keys_are_independent() -> None:
    clock = FakeClock()
    throttle = Throttle(2, 60.0, clock=clock)
    throttle.spend("alice")
    throttle.spend("alice")
    assert throttle.retry_after("alice") == 30
    assert throttle.retry_after("bob") is None


def test_refund_gives_back_a_successful_attempt_and_never_overfills() -> None:
    clock = FakeClock()
    throttle = Throttle(3, 60.0, clock=clock)
    for _ in range(10):  # ten successes in a row: spend, then refund
        throttle.spend("carol")
        throttle.refund("carol")
    for _ in range(10):
        throttle.refund("carol")  # cannot bank more than the capacity
    for _ in range(3):
        assert throttle.retry_after("carol") is None
        throttle.spend("carol")
    assert throttle.retry_after("carol") == 20


def test_spending_past_empty_does_not_dig_a_deeper_hole() -> None:
    clock = FakeClock()
    throttle = Throttle(1, 10.0, clock=clock)
    for _ in range(50):
        throttle.spend("mallory")
    assert throttle.retry_after("mallory") == 10
    clock.now += 10
    assert throttle.retry_after("mallory") is None


def test_a_clock_going_backwards_refills_nothing() -> None:
    clock = FakeClock()
    throttle = Throttle(1, 10.0, clock=clock)
    throttle.spend("x")
    clock.now -= 100
    assert throttle.retry_after("x") == 10


def test_memory_is_bounded_and_full_buckets_go_first() -> None:
    clock = FakeClock()
    throttle = Throttle(2, 60.0, clock=clock, max_keys=100)
    throttle.spend("victim")
    throttle.spend("victim")
    for i in range(1000):  # a spray of made-up usernames, one guess each
        throttle.spend(f"made-up-{i}")
        clock.now += 0.001
    assert len(throttle) <= 100
    # A spray of one-guess keys cannot push out the victim's empty bucket early:
    # pruning forgets full buckets first, then the least recently touched.
    throttle2 = Throttle(2, 60.0, clock=clock, max_keys=10)
    throttle2.spend("victim")
    throttle2.spend("victim")
    for i in range(50):
        throttle2.retry_after(f"never-failed-{i}")  # full buckets
    assert len(throttle2) <= 10
    assert throttle2.retry_after("victim") == 30


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        Throttle(0)
    with pytest.raises(ValueError):
        Throttle(1, 0)
    with pytest.raises(ValueError):
        Slots(0)


def test_slots_cap_what_a_key_holds_at_once() -> None:
    slots = Slots(2)
    slots.take("u1")
    slots.take("u1")
    with pytest.raises(SlotsFull) as refused:
        slots.take("u1")
    assert refused.value.limit == 2 and refused.value.key == "u1"
    slots.take("u2")  # another key is unaffected
    slots.release("u1")
    assert slots.held("u1") == 1
    slots.take("u1")
    slots.release("u1")
    slots.release("u1")
    slots.release("u1")  # an extra release never goes negative
    assert slots.held("u1") == 0
    slots.take("u1")
    slots.take("u1")
