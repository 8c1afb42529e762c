"""The next-fire-time core shared by the server and the agent: cron fields,
time zones, daylight saving time, and what is refused (with why)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from edgefleet.wire.schedule import (
    Schedule,
    ScheduleError,
    fire_times,
    next_fire,
    normalize_cron,
    shortest_period,
)

PARIS = "Europe/Paris"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_every_five_minutes_strictly_after() -> None:
    s = Schedule(cron="*/5 * * * *")
    assert next_fire(s, utc(2026, 1, 1, 10, 0, 0)) == utc(2026, 1, 1, 10, 5)
    assert next_fire(s, utc(2026, 1, 1, 10, 4, 59)) == utc(2026, 1, 1, 10, 5)
    assert fire_times(s, utc(2026, 1, 1, 23, 58), 2) == [
        utc(2026, 1, 2, 0, 0),
        utc(2026, 1, 2, 0, 5),
    ]


def test_six_fields_have_seconds_first() -> None:
    s = Schedule(cron="*/10 * * * * *")
    assert fire_times(s, utc(2026, 1, 1, 10, 0, 3), 3) == [
        utc(2026, 1, 1, 10, 0, 10),
        utc(2026, 1, 1, 10, 0, 20),
        utc(2026, 1, 1, 10, 0, 30),
    ]
    assert shortest_period(s, utc(2026, 1, 1)) == timedelta(seconds=10)


def test_wall_clock_of_the_time_zone() -> None:
    # 07:00 in Paris is 06:00 UTC in winter, 05:00 UTC in summer.
    s = Schedule(cron="0 7 * * *", timezone=PARIS)
    assert next_fire(s, utc(2026, 1, 15)) == utc(2026, 1, 15, 6)
    assert next_fire(s, utc(2026, 7, 15)) == utc(2026, 7, 15, 5)
    tokyo = Schedule(cron="0 7 * * *", timezone="Asia/Tokyo")
    assert next_fire(tokyo, utc(2026, 1, 15)) == utc(2026, 1, 15, 22)


def test_spring_forward_fires_once_at_the_jump() -> None:
    # 2026-03-29 in Paris: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
    s = Schedule(cron="30 2 * * *", timezone=PARIS)
    times = fire_times(s, utc(2026, 3, 27, 12), 3)
    assert times == [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        utc(2026, 3, 29, 1, 0),  # the jump: 03:00 CEST
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]


def test_fall_back_fixed_hour_fires_once_wildcard_hour_keeps_its_period() -> None:
    # 2026-10-25 in Paris: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    daily = Schedule(cron="30 2 * * *", timezone=PARIS)
    times = fire_times(daily, utc(2026, 10, 24, 12), 2)
    assert times == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    hourly = Schedule(cron="0 * * * *", timezone=PARIS)
    times = fire_times(hourly, utc(2026, 10, 24, 23, 30), 4)
    assert times == [utc(2026, 10, 25, h) for h in (0, 1, 2, 3)]  # one per real hour


def test_aliases_and_names() -> None:
    assert normalize_cron("@daily") == "0 0 * * *"
    assert normalize_cron("  0   9 * JAN-MAR MON-FRI ") == "0 9 * JAN-MAR MON-FRI"
    assert Schedule.model_validate("@hourly").cron == "0 * * * *"
    assert Schedule.model_validate("*/5 * * * *").timezone == "UTC"


@pytest.mark.parametrize(
    ("cron", "why"),
    [
        ("61 * * * *", "not a valid cron"),
        ("* * *", "got 3"),
        ("* * * * * * *", "got 7"),
        ("H * * * *", "'H'"),
        ("R * * * *", "'R'"),
        ("*/5 * * * * ;rm", "';rm' is not valid"),
        ("", "got 0"),
        ("* " * 100, "at most 128 characters"),
    ],
)
def test_invalid_cron_is_refused_with_the_reason(cron: str, why: str) -> None:
    with pytest.raises(ValidationError) as err:
        Schedule(cron=cron)
    assert err.value.errors()[0]["loc"] == ("cron",)
    assert why in str(err.value)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "/etc/localtime", "x" * 65])
def test_unknown_or_hostile_time_zone_is_refused(zone: str) -> None:
    with pytest.raises(ValidationError) as err:
        Schedule(cron="* * * * *", timezone=zone)
    assert err.value.errors()[0]["loc"] == ("timezone",)


def test_overlap_is_skip_or_queue() -> None:
    assert Schedule(cron="* * * * *").overlap == "skip"
    with pytest.raises(ValidationError):
        Schedule.model_validate({"cron": "* * * * *", "overlap": "parallel"})
    with pytest.raises(ValidationError):
        Schedule.model_validate({"cron": "* * * * *", "extra": 1})


def test_schedule_error_is_a_value_error() -> None:
    with pytest.raises(ScheduleError):
        normalize_cron("nope")


def test_a_cron_that_never_fires_is_refused() -> None:
    with pytest.raises(ValidationError) as err:
        Schedule(cron="0 0 30 2 *")  # the 30th of February
    assert "never fires" in str(err.value)
    assert next_fire(Schedule(cron="0 0 29 2 *"), utc(2026, 3, 1)) == utc(2028, 2, 29)
