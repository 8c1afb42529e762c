"""The scheduler's re-push of desired state that did not arrive: a device seen
behind for the first time was most likely just pushed to, and is left alone
until it has been behind for RESEND_AFTER."""

from __future__ import annotations

from edgefleet.server.scheduler.loop import RESEND_AFTER, overdue


def test_a_device_just_seen_behind_is_not_pushed_to_again() -> None:
    noted, due = overdue({}, [1, 2, 3], now=1000.0)
    assert due == []  # a fan-out's devices are not sent their state a second time at once
    assert noted == {1: 1000.0, 2: 1000.0, 3: 1000.0}


def test_a_device_still_behind_after_the_wait_is_pushed_to_then_waits_again() -> None:
    noted, _ = overdue({}, [1, 2], now=1000.0)
    noted, due = overdue(noted, [1, 2], now=1000.0 + RESEND_AFTER / 2)
    assert due == []
    noted, due = overdue(noted, [1], now=1000.0 + RESEND_AFTER + 1)
    assert due == [1]
    assert noted == {1: 1000.0 + RESEND_AFTER + 1}  # device 2 caught up: forgotten
    _, due = overdue(noted, [1], now=1000.0 + RESEND_AFTER + 2)
    assert due == []  # just pushed to: waits another RESEND_AFTER
