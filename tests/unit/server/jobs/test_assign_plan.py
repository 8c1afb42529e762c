"""A job being created is assigned in two steps (issue 16): :func:`plan` reads
and decides before the job's INSERT, :func:`write` writes once it exists, so
on SQLite the write lock is held for the writes only. Both steps together
must give exactly what :func:`assign` gives a job already inserted: the same
device rows, the same devices to push, the same ``job.refused`` events."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.devices.tables import Device
from edgefleet.server.events.audit import REFUSALS_RECORDED
from edgefleet.server.events.tables import Event
from edgefleet.server.jobs import assign as assign_module
from edgefleet.server.jobs.assign import PART, assign, plan, write
from edgefleet.server.jobs.eligibility import facts_key
from edgefleet.server.jobs.tables import Job
from edgefleet.server.reservations.links import attach
from edgefleet.server.reservations.tables import Reservation, ReservationDevice
from tests.support.statements import recorded
from tests.unit.server.conftest import store_sessions
from tests.unit.server.jobs.test_assign import ARM, SPEC, X86, World

COUNT = 2_100  # more than one insert batch (1,000) and more refusals than are recorded


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[World]:
    async with sessions() as db:
        yield await World(db).setup()


async def _fleet(world: World) -> list[int]:
    # every seventh device cannot run SPEC
    await world.many_devices(COUNT, lambda i: X86 if i % 7 == 0 else ARM)
    return list(await world.db.scalars(select(Device.pk).order_by(Device.pk)))


def _unsaved(world: World, **fields: Any) -> Job:
    return Job(
        id=new_id("j"),
        project_pk=world.project_pk,
        application_pk=world.app_pk,
        version_pk=world.version_pk,
        selector="site=lab",
        resolved=SPEC.model_dump(mode="json"),
        state="pending",
        **fields,
    )


def _shape(rows: dict[int, Any]) -> dict[int, tuple[Any, ...]]:
    return {
        pk: (r.assigned, r.eligible, r.state, r.error, r.target_version) for pk, r in rows.items()
    }


async def _refusals(world: World, job: Job) -> list[str]:
    found = await world.db.scalars(
        select(Event.message).where(Event.kind == "job.refused", Event.job_id == job.id)
    )
    return [m.replace(job.id, "JOB") for m in found]


async def test_a_new_job_planned_before_its_insert_gets_what_assign_gives(world: World) -> None:
    await _fleet(world)
    twin = await world.job(selector="site=lab")
    expected = await assign(world.db, twin, "1")
    await world.db.flush()

    job = _unsaved(world)
    with recorded(world.db.bind.sync_engine) as statements:  # type: ignore[union-attr]
        planned = await plan(world.db, job, "1")
    verbs = {statement.split()[0].upper() for statement in statements}
    assert statements and verbs == {"SELECT"}  # reads only: no lock taken
    assert job.pk is None and job not in world.db  # nothing added behind the caller's back

    world.db.add(job)
    await world.db.flush()
    changed = await write(world.db, job, planned)
    await world.db.flush()

    assert changed == expected and len(changed) == COUNT - len(range(0, COUNT, 7))
    rows = _shape(await world.rows(job))
    assert len(rows) == COUNT
    assert rows == _shape(await world.rows(twin))
    refusals = await _refusals(world, job)
    assert refusals == await _refusals(world, twin)
    assert len(refusals) == REFUSALS_RECORDED + 1  # one each, then one for the rest
    assert any("refused on" in m and "more device(s)" in m for m in refusals)


async def test_a_new_job_is_held_to_the_reservation_it_will_be_attached_to(world: World) -> None:
    pks = await _fleet(world)
    now = utcnow()
    reservation = Reservation(
        id=new_id("r"),
        project_pk=world.project_pk,
        start=now - timedelta(hours=1),
        end=now + timedelta(hours=1),
        exclusive=False,
    )
    world.db.add(reservation)
    await world.db.flush()
    booked = [pk for pk in pks if pk % 2]
    await world.db.execute(
        insert(ReservationDevice),
        [{"reservation_pk": reservation.pk, "device_pk": pk} for pk in booked],
    )
    twin = await world.job(selector="site=lab")
    attach(world.db, twin.pk, reservation)
    await world.db.flush()
    expected = await assign(world.db, twin, "1")

    job = _unsaved(world)
    planned = await plan(world.db, job, "1", reservation=reservation)
    world.db.add(job)
    await world.db.flush()
    attach(world.db, job.pk, reservation)
    assert await write(world.db, job, planned) == expected
    await world.db.flush()
    rows = _shape(await world.rows(job))
    assert rows == _shape(await world.rows(twin))
    x86 = {pks[i] for i in range(0, COUNT, 7)}
    unbooked = [pk for pk in pks if pk not in set(booked) and pk not in x86]
    assert unbooked and {rows[pk] for pk in unbooked} == {
        (True, False, "failed", f"not booked by reservation {reservation.id}", "1")
    }
    assert expected <= set(booked)


@pytest.fixture
async def world_on_both(database_url: str | None, tmp_path: Path) -> AsyncIterator[World]:
    """A world on SQLite and on PostgreSQL: psycopg decodes JSON as it fetches,
    so the rows must come streamed (a server-side cursor there), not buffered."""
    async with store_sessions(database_url, tmp_path) as made, made() as db:
        yield await World(db).setup()


async def test_planning_a_large_job_gives_the_event_loop_turns(
    world_on_both: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler's periodic pass plans every selector job on the event loop;
    at 10,000 devices one uninterrupted pass stalled every API request behind
    it. Another task must get a turn at least every PART devices judged, on
    both stores, with the same decisions, and the session still writes after."""
    world = world_on_both
    await _fleet(world)
    job = await world.job(selector="site=lab")
    await assign(world.db, job, "1")
    await world.db.flush()
    judged = 0

    def counted(facts: dict[str, Any]) -> str:
        nonlocal judged
        judged += 1
        return facts_key(facts)

    monkeypatch.setattr(assign_module, "facts_key", counted)
    seen_at: list[int] = []
    planning = True

    async def other_request() -> None:
        while planning:
            seen_at.append(judged)
            await asyncio.sleep(0)

    waiting = asyncio.create_task(other_request())
    try:
        planned = await plan(world.db, job, "1", upgraded=True)
    finally:
        planning = False
        await waiting
    assert judged == COUNT
    assert len(planned.changed) == COUNT - len(range(0, COUNT, 7))  # the same decisions
    seen_at.append(judged)
    assert max(b - a for a, b in itertools.pairwise(seen_at)) <= PART
    await write(world.db, job, planned)  # the streamed reads left the session usable
    await world.db.commit()
