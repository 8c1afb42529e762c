"""Which services of a periodic job run at each fire time, and the checks a
schedule must pass before a job is stored.

A periodic job's *one-shot* services are the ones whose ``restart`` is
``"no"`` (Compose's default): each fire time starts them and waits for them
to exit. Its other services (``restart: always|unless-stopped|on-failure``)
run all the time as in any job, e.g. a database the runs write to. A
schedule on a job with no one-shot service is refused: nothing would run.

In the desired state the one-shot services leave the assignment's ``spec``
(the change queue never starts them) for ``periodic.services``: the agent's
scheduler starts them. A revision hashes ``spec`` only, so changing the
schedule never restarts the always-on services.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.errors import Invalid
from edgefleet.server.jobs.tables import Job
from edgefleet.server.schedules.tables import JobSchedule
from edgefleet.spec.model import AppSpec
from edgefleet.wire.messages import DesiredState
from edgefleet.wire.schedule import Schedule, ScheduledServices, shortest_period

CHUNK = 500


def one_shot(spec: AppSpec) -> list[str]:
    """The services a fire time starts, in start order."""
    return [name for name in spec.start_order() if spec.services[name].restart == "no"]


def check(schedule: Schedule, spec: AppSpec, *, min_period: float, now: datetime) -> None:
    """Refuse (422 naming the field) a schedule that would run nothing, run a
    service some always-on service needs, or fire more often than allowed."""
    names = one_shot(spec)
    if not names:
        raise Invalid(
            "schedule: this application has no one-shot service to run (a service with "
            'restart: "no", Compose\'s default); every service here restarts',
            field="schedule",
        )
    for name in names:
        if spec.services[name].runtime != "container":
            raise Invalid(
                f"schedule: service {name} uses the process runtime; the one-shot services of "
                "a periodic job run in containers",
                field="schedule",
            )
    for name, service in spec.services.items():
        if name in names:
            continue
        needed = sorted(set(service.depends_on) & set(names))
        if needed:
            raise Invalid(
                f"schedule: service {name} runs all the time but depends on "
                f"{', '.join(needed)}, which only runs at the schedule's fire times",
                field="schedule",
            )
    gap = shortest_period(schedule, now).total_seconds()
    if gap < min_period:
        raise Invalid(
            f"schedule.cron: fires every {gap:g} s; the shortest period this server "
            f"allows is {min_period:g} s (--schedule-min-period)",
            field="schedule.cron",
        )


def split(spec: AppSpec, schedule: Schedule) -> tuple[AppSpec, ScheduledServices]:
    """The always-on part of ``spec`` and what each fire time starts."""
    names = set(one_shot(spec))
    rest = spec.model_copy(
        update={"services": {n: s for n, s in spec.services.items() if n not in names}}
    )
    periodic = ScheduledServices(
        schedule=schedule,
        services={n: s for n, s in spec.services.items() if n in names},
    )
    return rest, periodic


def as_schedule(row: JobSchedule) -> Schedule:
    return Schedule.model_construct(cron=row.cron, timezone=row.timezone, overlap=row.overlap)  # type: ignore[arg-type]


async def schedules_of(db: AsyncSession, job_ids: Iterable[str]) -> dict[str, Schedule]:
    """{job id: schedule} of the periodic jobs among ``job_ids``."""
    ids = sorted(set(job_ids))
    found: dict[str, Schedule] = {}
    for start in range(0, len(ids), CHUNK):
        rows = await db.execute(
            select(Job.id, JobSchedule)
            .join(JobSchedule, JobSchedule.job_pk == Job.pk)
            .where(Job.id.in_(ids[start : start + CHUNK]))
        )
        for job_id, row in rows.all():
            found[job_id] = as_schedule(row)
    return found


async def attach(db: AsyncSession, states: Iterable[DesiredState]) -> None:
    """Move periodic jobs' one-shot services to ``periodic`` in desired states
    built by :func:`edgefleet.server.jobs.desired.desired_for` (in place)."""
    states = list(states)
    schedules = await schedules_of(db, {a.job_id for s in states for a in s.jobs})
    if not schedules:
        return
    for state in states:
        for assignment in state.jobs:
            schedule = schedules.get(assignment.job_id)
            if schedule is not None:
                assignment.spec, assignment.periodic = split(assignment.spec, schedule)
