"""Periodic jobs on the wire: the schedule, its next fire times, and the runs.

Both sides need the same answer to "when does this fire next": the server to
validate a schedule and to show the next fire time, the agent to fire it from
its own clock with no server in reach. So the computation lives here, pure
(no I/O, no clock of its own: ``after`` is always given), on top of
``croniter``.

    Schedule(cron, timezone, overlap)
        |  next_fire(schedule, after)      the first fire time strictly after
        v                                  ``after``, as an aware UTC datetime
    aware UTC datetime

The cron string has 5 fields (minute hour day month weekday), or 6 with a
*seconds* field first (``*/10 * * * * *``: every 10 s, as in Quartz, Spring
or node-cron), or one of ``@hourly @daily @weekly @monthly @yearly``. Fire
times are wall-clock times in ``timezone`` (IANA name, default ``UTC``).
Daylight saving time follows what cron users expect:

- spring forward: a wall time that does not exist that day (02:30 when
  clocks jump from 02:00 to 03:00) fires once, at the jump (03:00);
- fall back: a job with a fixed hour (``30 2 * * *``) fires once, on the
  first 02:30, not again an hour later; a job whose hour field is a
  wildcard (``0 * * * *``, ``*/10 * * * * *``) keeps its period through
  the repeated hour.
"""

from __future__ import annotations

import functools
import itertools
import re
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgefleet.spec.model import Service

MAX_CRON = 128
MAX_TIMEZONE = 64
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELD = re.compile(r"^[0-9A-Za-z*/,?#-]+$")
_NAMES = re.compile(r"JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT")
# Left once month and day names are gone: only L and W (last, weekday) are cron;
# croniter's own extensions (H hashing, R random) are not, and are refused.
_LETTERS = re.compile(r"[A-KM-VX-Z]")


class ScheduleError(ValueError):
    """A cron string or time zone that cannot be used; the message says why."""


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name``; only names of the system's zone database are
    taken (never a path), so a hostile name cannot make us read a file."""
    if len(name) > MAX_TIMEZONE or name not in _zones():
        raise ScheduleError(
            f"unknown time zone {name[:MAX_TIMEZONE]!r} (an IANA name like 'Europe/Paris')"
        )
    return zoneinfo.ZoneInfo(name)


def normalize_cron(expr: str) -> str:
    """The cron string with aliases expanded and fields single-spaced; raises
    :class:`ScheduleError` naming what is wrong."""
    if len(expr) > MAX_CRON:
        raise ScheduleError(f"cron string longer than {MAX_CRON} characters")
    text = " ".join(expr.split())
    text = _ALIASES.get(text.lower(), text)
    fields = text.split(" ") if text else []
    if len(fields) not in (5, 6):
        raise ScheduleError(
            f"a cron string has 5 fields (minute hour day month weekday) or 6 with "
            f"seconds first; got {len(fields)}"
        )
    for value in fields:
        if not _FIELD.match(value) or _LETTERS.search(_NAMES.sub("", value.upper())):
            raise ScheduleError(f"cron field {value[:32]!r} is not valid")
    from croniter import CroniterError, croniter  # type: ignore[import-untyped]

    seconds = len(fields) == 6
    if not croniter.is_valid(text, second_at_beginning=seconds):
        raise ScheduleError(f"{text!r} is not a valid cron string")
    try:  # valid but impossible, like the 30th of February
        croniter(text, datetime(2001, 1, 1, tzinfo=UTC), second_at_beginning=seconds).get_next(
            datetime
        )
    except CroniterError as exc:
        raise ScheduleError(f"{text!r} never fires") from exc
    return text


class Schedule(BaseModel):
    """A job's ``schedule``: ``{"cron", "timezone", "overlap"}``. A plain string
    is taken as ``{"cron": <it>}`` (time zone UTC)."""

    model_config = ConfigDict(extra="forbid")

    cron: str = Field(
        max_length=MAX_CRON,
        description="5 fields, or 6 with seconds first, or @hourly/@daily/...",
        examples=["*/5 * * * *"],
    )
    timezone: str = Field("UTC", max_length=MAX_TIMEZONE, examples=["Europe/Paris"])
    overlap: Literal["skip", "queue"] = Field(
        "skip",
        description="a fire time while the previous run still runs: skip it (recorded as "
        "'skipped'), or queue it (at most one waits; more are skipped)",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"cron": value} if isinstance(value, str) else value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return normalize_cron(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        zone(value)
        return value


def _fixed_hour(cron: str) -> bool:
    fields = cron.split(" ")
    hour = fields[2] if len(fields) == 6 else fields[1]
    return not hour.startswith("*")


def next_fire(schedule: Schedule, after: datetime) -> datetime:
    """The first fire time strictly after ``after`` (aware), in UTC."""
    from croniter import CroniterError, croniter

    tz = zone(schedule.timezone)
    seconds = len(schedule.cron.split(" ")) == 6
    local = after.astimezone(tz)
    it = croniter(schedule.cron, local, second_at_beginning=seconds)
    fixed = _fixed_hour(schedule.cron)
    for _ in range(8):
        try:
            found: datetime = it.get_next(datetime)
        except CroniterError as exc:
            raise ScheduleError(f"{schedule.cron!r} has no fire time after {after}") from exc
        if fixed and _second_occurrence(found, tz):
            continue  # fall back: the fixed wall time already fired an hour ago
        utc = found.astimezone(UTC)
        if utc > after:
            return utc
    raise ScheduleError(f"{schedule.cron!r} has no next fire time")  # pragma: no cover


def _second_occurrence(local: datetime, tz: zoneinfo.ZoneInfo) -> bool:
    first = local.replace(tzinfo=None).replace(tzinfo=tz, fold=0)
    return first.utcoffset() != local.utcoffset()


def fire_times(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times after ``after``."""
    found: list[datetime] = []
    for _ in range(count):
        after = next_fire(schedule, after)
        found.append(after)
    return found


def shortest_period(schedule: Schedule, after: datetime, samples: int = 16) -> timedelta:
    """The smallest gap between consecutive fires among the next few: a cheap
    guard against ``* * * * * *`` (a run every second on every device)."""
    times = [after, *fire_times(schedule, after, samples)]
    return min(b - a for a, b in itertools.pairwise(times[1:]))


# --- what travels -------------------------------------------------------------------------


class ScheduledServices(BaseModel):
    """On a :class:`~edgefleet.wire.workload.JobAssignment`: when the job fires
    and the one-shot services each run starts. Those services are not in the
    assignment's ``spec`` (the change queue never starts them); the agent's
    scheduler does, at each fire time."""

    schedule: Schedule
    services: dict[str, Service] = Field(default_factory=dict)


RunState = Literal["ok", "failed", "skipped"]


class RunRecord(BaseModel):
    """One fire of a periodic job on one device, as the device recorded it.
    ``id`` is made by the device once, so a report sent twice is stored once."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    job: str = Field(min_length=1, max_length=64)
    scheduled: datetime
    started: datetime | None = None
    finished: datetime | None = None
    exit_code: int | None = None
    state: RunState
    error: str | None = Field(None, max_length=2000)
    services: dict[str, int | None] = Field(
        default_factory=dict, max_length=64, description="exit code per service"
    )


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (naive is taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
