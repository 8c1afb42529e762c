"""``GET /jobs/{id}``'s body, read in few statements (issue 16): the job's
application, version, project, reservation, schedule and rollout come from
one statement, so a view is that, the per-state counts and the first device
page, whatever the job has. The fields must still be the right ones."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.auth.caller import Caller
from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.errors import NotFound
from edgefleet.server.jobs import service
from edgefleet.server.jobs.tables import Job, JobDevice
from edgefleet.server.reservations.links import attach
from edgefleet.server.reservations.tables import Reservation
from edgefleet.server.rollouts.machine import Rollout, to_json
from edgefleet.server.rollouts.tables import JobRollout
from edgefleet.server.schedules.tables import JobSchedule
from tests.support.statements import recorded
from tests.unit.server.jobs.test_assign import ARM, World

ADMIN = Caller(user_pk=1, user_id="u_admin", name="admin", is_admin=True)


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[World]:
    async with sessions() as db:
        yield await World(db).setup()


async def _view(world: World, job: Job, *, found: bool = False) -> tuple[dict[str, Any], list[str]]:
    """The job's JSON view and the statements it took; ``found``: the job is
    looked up first, as ``GET /jobs/{id}`` does, and that lookup counted."""
    with recorded(world.db.bind.sync_engine) as statements:  # type: ignore[union-attr]
        if found:
            shown, about = await service.find_shown(world.db, ADMIN, job.id)
            assert shown is job
            body = await service.output_json(world.db, shown, ADMIN, about=about)
        else:
            body = await service.output_json(world.db, job, ADMIN)
    return json.loads(body), statements


async def _with_devices(world: World, job: Job, count: int) -> list[str]:
    ids = []
    for i in range(count):
        device = await world.device(f"d{i}", {"site": "lab"}, ARM)
        world.db.add(JobDevice(job_pk=job.pk, device_pk=device.pk, state="running", version="1"))
        ids.append(device.id)
    await world.db.flush()
    return ids


async def test_a_plain_job_is_three_statements(world: World) -> None:
    job = await world.job(selector="site=lab")
    await _with_devices(world, job, 3)
    view, statements = await _view(world, job)
    assert len(statements) == 3, statements  # facts, counts, first device page
    assert (view["application"], view["version"], view["project"]) == ("web", "1", "default")
    assert view["reservation"] is None and view["schedule"] is None and view["rollout"] is None
    assert view["counts"] == {"running": 3} and len(view["devices"]) == 3


async def test_reservation_schedule_and_rollout_come_in_the_same_statement(world: World) -> None:
    job = await world.job(selector="site=lab")
    ids = await _with_devices(world, job, 4)
    now = utcnow()
    reservation = Reservation(
        id=new_id("r"), project_pk=world.project_pk, start=now, end=now + timedelta(hours=1)
    )
    world.db.add(reservation)
    await world.db.flush()
    attach(world.db, job.pk, reservation)
    world.db.add(JobSchedule(job_pk=job.pk, cron="*/5 * * * *", timezone="UTC", overlap="skip"))
    # a staged rollout from version 0 to 1 that has moved the first two devices
    world.db.add(
        JobRollout(
            job_pk=job.pk,
            settings={"max_parallel": 2},
            state="paused",
            from_version="0",
            to_version="1",
            from_resolved={"services": {}},
        )
    )
    await world.db.flush()
    rollout = await world.db.get(JobRollout, job.pk)
    assert rollout is not None
    staged = Rollout(state="paused", batches=[ids[:2], ids[2:]], moved={ids[0]: 1.0, ids[1]: 1.0})
    rollout.progress = to_json(staged)
    await world.db.flush()

    view, statements = await _view(world, job)
    assert view["reservation"] == reservation.id
    assert view["schedule"]["cron"] == "*/5 * * * *" and view["schedule"]["next"]
    assert view["rollout"]["state"] == "paused" and view["rollout"]["max_parallel"] == 2
    targets = {d["device"]: d["target_version"] for d in view["devices"]}
    assert targets == {ids[0]: None, ids[1]: None, ids[2]: "0", ids[3]: "0"}
    batches = view["rollout"]["batches"]
    assert [[d["device"] for d in b["devices"]] for b in batches] == [ids[:2], ids[2:]]
    # facts, counts, the rollout batches' devices, the first page, and the
    # schedule's last runs for that page
    assert len(statements) <= 5, statements
    assert not any("job_rollouts" in s and "job_schedules" not in s for s in statements), (
        "the rollout row is read with the job's other facts, not again"
    )


async def test_finding_the_job_to_show_reads_its_facts_with_it(world: World) -> None:
    """``GET /jobs/{id}``: the statement that finds the job is the facts one,
    so the view is three statements with the lookup, not four."""
    job = await world.job(selector="site=lab")
    await _with_devices(world, job, 2)
    view, statements = await _view(world, job, found=True)
    assert view["id"] == job.id and view["application"] == "web"
    assert view["counts"] == {"running": 2}
    assert len(statements) == 3, statements  # job with its facts, counts, first page


async def test_a_job_of_a_project_the_caller_cannot_read_is_not_found(world: World) -> None:
    job = await world.job(selector="site=lab")
    stranger = Caller(user_pk=99, user_id="u_x", name="x", is_admin=False)
    with pytest.raises(NotFound):
        await service.find_shown(world.db, stranger, job.id)
    with pytest.raises(NotFound):
        await service.find_shown(world.db, ADMIN, "j_missing")
