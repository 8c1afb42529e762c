"""The agent's timetable, pure: fire times in, Start/Skip/Cancel out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edgefleet.agent.schedule.core import Cancel, Skip, Start, Timetable
from edgefleet.wire.schedule import Schedule

T0 = datetime(2026, 1, 1, 10, 0, 1, tzinfo=UTC)
EVERY_10S = Schedule(cron="*/10 * * * * *")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_fires_at_each_fire_time_and_not_before() -> None:
    table = Timetable()
    assert table.sync({"j": EVERY_10S}, T0) == []
    assert table.next_fire("j") == at(9)
    assert table.tick(at(8.9)) == []
    assert table.tick(at(9)) == [Start("j", at(9))]
    assert table.running("j")
    assert table.finished("j") == []
    assert table.tick(at(19.5)) == [Start("j", at(19))]


def test_overlap_skip_records_the_skipped_fire_time() -> None:
    table = Timetable()
    table.sync({"j": EVERY_10S}, T0)
    assert table.tick(at(9)) == [Start("j", at(9))]
    skipped = table.tick(at(19))
    assert skipped == [Skip("j", at(19), "the previous run was still running")]
    assert table.finished("j") == []  # nothing was queued
    assert not table.running("j")


def test_overlap_queue_keeps_at_most_one() -> None:
    table = Timetable()
    table.sync({"j": Schedule(cron="*/10 * * * * *", overlap="queue")}, T0)
    assert table.tick(at(9)) == [Start("j", at(9))]
    assert table.tick(at(19)) == []  # queued
    assert table.tick(at(29)) == [Skip("j", at(29), "a queued run was already waiting")]
    assert table.finished("j") == [Start("j", at(19))]  # the queued one starts at once
    assert table.running("j")
    assert table.finished("j") == []


def test_a_missed_backlog_is_not_caught_up() -> None:
    table = Timetable()
    table.sync({"j": EVERY_10S}, T0)
    # The device slept for an hour: one run (for the first missed time), then the next.
    assert table.tick(at(3600)) == [Start("j", at(9))]
    assert table.next_fire("j") == at(3609)


def test_a_restart_does_not_fire_the_same_time_twice() -> None:
    table = Timetable(last_fired={"j": at(9)})
    table.sync({"j": EVERY_10S}, at(8.5))  # clock read just before the last fire time
    assert table.next_fire("j") == at(19)


def test_jobs_gone_or_changed() -> None:
    table = Timetable()
    table.sync({"j": Schedule(cron="*/10 * * * * *", overlap="queue")}, T0)
    table.tick(at(9))
    table.tick(at(19))  # one queued
    changed = Schedule(cron="0 * * * * *", overlap="queue")
    assert table.sync({"j": changed}, at(20)) == [Cancel("j", gone=False)]
    assert table.next_fire("j") == at(59)
    assert table.sync({}, at(21)) == [Cancel("j", gone=True)]
    assert table.wake() is None
    assert table.finished("j") == []


def test_wake_is_the_earliest_fire_time() -> None:
    table = Timetable()
    table.sync({"a": Schedule(cron="0 * * * * *"), "b": EVERY_10S}, T0)
    assert table.wake() == at(9)


def test_a_schedule_that_never_fires_is_left_out_not_fatal() -> None:
    never = Schedule.model_construct(cron="0 0 30 2 *", timezone="UTC", overlap="skip")
    table = Timetable()
    assert table.sync({"bad": never, "j": EVERY_10S}, T0) == []
    assert table.next_fire("bad") is None and table.next_fire("j") == at(9)
