"""When each periodic job fires on this device: a pure timetable.

Events in, actions out, no I/O and no clock of its own (``now`` is given), so
it is tested without an engine or a server::

    sync(schedules, now)   jobs added / changed / gone     -> Cancel(job)...
    tick(now)              fire times reached              -> Start(job, at) | Skip(job, at)
    finished(job)          a run is over                   -> Start(job, at) if one was queued

Per job::

                  fire time                      finished, nothing queued
      idle ------------------------> running ----------------------------> idle
                                     |    ^
               fire time, "skip"     |    |  finished, one queued: Start it
               -> Skip(at)           v    |
                                     queued (at most one; a further fire time -> Skip)

A fire time missed while the agent was not running is not caught up: the
first fire time after start is the next one after ``now`` (or after the
last time this job fired, if that is later: a restart within the same
second does not fire twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from edgefleet.wire.schedule import Schedule, ScheduleError, next_fire


@dataclass(frozen=True)
class Start:
    job: str
    scheduled: datetime


@dataclass(frozen=True)
class Skip:
    job: str
    scheduled: datetime
    reason: str


@dataclass(frozen=True)
class Cancel:
    """The job is gone from the desired state (or its schedule changed while a
    run waits): drop what is queued; a run in progress of a gone job is stopped."""

    job: str
    gone: bool


Action = Start | Skip | Cancel


@dataclass
class _Clock:
    schedule: Schedule
    next: datetime
    running: bool = False
    queued: datetime | None = None


class Timetable:
    def __init__(self, last_fired: dict[str, datetime] | None = None) -> None:
        self._clocks: dict[str, _Clock] = {}
        self._last_fired = dict(last_fired or {})

    def next_fire(self, job: str) -> datetime | None:
        clock = self._clocks.get(job)
        return None if clock is None else clock.next

    def running(self, job: str) -> bool:
        clock = self._clocks.get(job)
        return clock is not None and clock.running

    def wake(self) -> datetime | None:
        """The earliest fire time of any job (when to look again)."""
        return min((c.next for c in self._clocks.values()), default=None)

    def sync(self, schedules: dict[str, Schedule], now: datetime) -> list[Action]:
        actions: list[Action] = []
        for job in list(self._clocks):
            if job not in schedules:
                removed = self._clocks.pop(job)
                actions.append(Cancel(job, gone=True))
                if removed.running:
                    self._last_fired[job] = now
        for job, schedule in schedules.items():
            known = self._clocks.get(job)
            if known is not None and known.schedule == schedule:
                continue
            after = max(now, self._last_fired.get(job, now))
            try:
                upcoming = next_fire(schedule, after)
            except ScheduleError:
                self._clocks.pop(job, None)  # never fires (the server refuses such a cron)
                continue
            if known is None:
                self._clocks[job] = _Clock(schedule, upcoming)
            else:
                known.schedule = schedule
                known.next = upcoming
                if known.queued is not None:
                    known.queued = None
                    actions.append(Cancel(job, gone=False))
        return actions

    def tick(self, now: datetime) -> list[Action]:
        actions: list[Action] = []
        for job, clock in sorted(self._clocks.items()):
            if clock.next > now:
                continue
            at = clock.next
            # Whatever else fell due meanwhile (a suspended device) is not caught up.
            try:
                clock.next = next_fire(clock.schedule, now)
            except ScheduleError:
                clock.next = datetime.max.replace(tzinfo=UTC)  # no further fire time
            self._last_fired[job] = at
            if not clock.running:
                clock.running = True
                actions.append(Start(job, at))
            elif clock.schedule.overlap == "queue" and clock.queued is None:
                clock.queued = at
            else:
                why = (
                    "a queued run was already waiting"
                    if clock.queued is not None
                    else "the previous run was still running"
                )
                actions.append(Skip(job, at, why))
        return actions

    def finished(self, job: str) -> list[Action]:
        clock = self._clocks.get(job)
        if clock is None:
            return []
        if clock.queued is not None:
            at, clock.queued = clock.queued, None
            return [Start(job, at)]
        clock.running = False
        return []
