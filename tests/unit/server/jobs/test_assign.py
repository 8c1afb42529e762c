"""Which devices a job is on (``jobs/assign.py``), against a real SQLite file.

The job and its devices are real rows; each test changes one thing the
module's docstring lists (a new job, an upgrade, a cancel, a relabel, new
facts, the clock) and checks both the rows and the set of devices whose
desired state changed, since the caller pushes exactly that set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.applications.tables import Application, AppVersion
from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.devices.tables import Device
from edgefleet.server.jobs.assign import active, assign, targets
from edgefleet.server.jobs.tables import Job, JobDevice
from edgefleet.server.projects.tables import Project
from edgefleet.spec.model import AppSpec

Sessions = async_sessionmaker[AsyncSession]

ARM = {"runtimes": ["docker"], "resources": {"arch": "arm64"}}
X86 = {"runtimes": ["docker"], "resources": {"arch": "amd64"}}
SPEC = AppSpec.model_validate(
    {"services": {"web": {"image": "nginx:1.27"}}, "requires": {"arch": ["arm64"]}}
)


@dataclass(frozen=True)
class Row:
    assigned: bool
    eligible: bool
    state: str
    error: str | None
    target_version: str | None
    updated_at: datetime


class World:
    """Two projects, one application version, and helpers to add devices and jobs."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db
        self.project_pk = 0
        self.other_project_pk = 0
        self.app_pk = 0
        self.version_pk = 0

    async def setup(self) -> World:
        projects = [Project(id=new_id("p"), name=n) for n in ("default", "other")]
        self.db.add_all(projects)
        await self.db.flush()
        self.project_pk, self.other_project_pk = projects[0].pk, projects[1].pk
        app = Application(id=new_id("a"), project_pk=self.project_pk, name="web")
        self.db.add(app)
        await self.db.flush()
        version = AppVersion(
            id=new_id("v"), application_pk=app.pk, version="1", spec=SPEC.model_dump(mode="json")
        )
        self.db.add(version)
        await self.db.flush()
        self.app_pk, self.version_pk = app.pk, version.pk
        return self

    async def device(
        self, name: str, labels: dict[str, str], facts: dict[str, Any], project_pk: int = 0
    ) -> Device:
        device = Device(
            id=new_id("d"),
            project_pk=project_pk or self.project_pk,
            name=name,
            labels=labels,
            facts=facts,
            credential_hash=new_id("h"),
        )
        self.db.add(device)
        await self.db.flush()
        return device

    async def job(
        self,
        *,
        selector: str | None = None,
        devices: list[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Job:
        job = Job(
            id=new_id("j"),
            project_pk=self.project_pk,
            application_pk=self.app_pk,
            version_pk=self.version_pk,
            selector=selector,
            target_devices=devices,
            resolved=SPEC.model_dump(mode="json"),
            start=start,
            end=end,
        )
        self.db.add(job)
        await self.db.flush()
        return job

    async def rows(self, job: Job) -> dict[int, Row]:
        result = await self.db.execute(
            select(
                JobDevice.device_pk,
                JobDevice.assigned,
                JobDevice.eligible,
                JobDevice.state,
                JobDevice.error,
                JobDevice.target_version,
                JobDevice.updated_at,
            ).where(JobDevice.job_pk == job.pk)
        )
        return {
            pk: Row(assigned, eligible, state, error, target_version, updated_at)
            for pk, assigned, eligible, state, error, target_version, updated_at in result.all()
        }

    async def many_devices(self, count: int, facts: Callable[[int], dict[str, Any]]) -> None:
        """``count`` devices labelled site=lab in one bulk insert, the i-th with ``facts(i)``."""
        await self.db.execute(
            insert(Device),
            [
                {
                    "id": new_id("d"),
                    "project_pk": self.project_pk,
                    "name": f"d{i}",
                    "labels": {"site": "lab"},
                    "facts": facts(i),
                    "credential_hash": new_id("h"),
                    "created_at": utcnow(),
                }
                for i in range(count)
            ],
        )

    async def set_device(self, device: Device, **values: Any) -> None:
        await self.db.execute(update(Device).where(Device.pk == device.pk).values(**values))

    async def set_state(self, job: Job, device: Device, state: str) -> None:
        await self.db.execute(
            update(JobDevice)
            .where(JobDevice.job_pk == job.pk, JobDevice.device_pk == device.pk)
            .values(state=state)
        )


@pytest.fixture
async def world(sessions: Sessions) -> AsyncIterator[World]:
    async with sessions() as db:
        yield await World(db).setup()


# -- active: the time window and terminal states ---------------------------------------


def test_active_follows_the_time_window_and_terminal_states() -> None:
    now = utcnow()
    job = Job(state="pending", start=None, end=None)
    assert active(job, now)
    job.start = now + timedelta(seconds=1)
    assert not active(job, now)
    job.start = now
    assert active(job, now)
    job.end = now
    assert not active(job, now)  # the end is exclusive
    job.end = now + timedelta(seconds=1)
    assert active(job, now)
    for state in ("cancelled", "expired"):
        job.state = state
        assert not active(job, now)


# -- targets -----------------------------------------------------------------------------


async def test_a_selector_targets_matching_devices_of_the_job_project_only(world: World) -> None:
    a = await world.device("a", {"site": "lab"}, ARM)
    b = await world.device("b", {"site": "lab", "tier": "test"}, X86)
    await world.device("c", {"site": "home"}, ARM)
    await world.device("d", {"site": "lab"}, ARM, project_pk=world.other_project_pk)
    job = await world.job(selector="site=lab")
    assert await targets(world.db, job) == [(a.pk, ARM), (b.pk, X86)]
    job.selector = "site=lab,tier!=test"
    assert await targets(world.db, job) == [(a.pk, ARM)]


async def test_an_empty_selector_targets_the_whole_project(world: World) -> None:
    a = await world.device("a", {}, ARM)
    b = await world.device("b", {"x": "y"}, {})
    await world.device("c", {}, ARM, project_pk=world.other_project_pk)
    job = await world.job(selector="")
    assert await targets(world.db, job) == [(a.pk, ARM), (b.pk, {})]


async def test_a_device_list_targets_those_ids_in_the_project_and_ignores_others(
    world: World,
) -> None:
    a = await world.device("a", {}, ARM)
    await world.device("b", {}, ARM)
    foreign = await world.device("c", {}, ARM, project_pk=world.other_project_pk)
    job = await world.job(devices=[a.id, foreign.id, "dnosuchdevice"])
    assert await targets(world.db, job) == [(a.pk, ARM)]
    job.target_devices = []
    assert await targets(world.db, job) == []


# -- assign ------------------------------------------------------------------------------


async def test_a_new_job_gets_a_row_per_target_and_reports_the_eligible_ones(
    world: World,
) -> None:
    a = await world.device("a", {"site": "lab"}, ARM)
    b = await world.device("b", {"site": "lab"}, X86)
    await world.device("c", {"site": "home"}, ARM)
    job = await world.job(selector="site=lab")

    changed = await assign(world.db, job, "1")

    assert changed == {a.pk}
    rows = await world.rows(job)
    assert set(rows) == {a.pk, b.pk}
    assert (rows[a.pk].assigned, rows[a.pk].eligible, rows[a.pk].state) == (True, True, "pending")
    assert rows[a.pk].error is None
    assert rows[a.pk].target_version == "1"
    assert (rows[b.pk].assigned, rows[b.pk].eligible, rows[b.pk].state) == (True, False, "failed")
    error = rows[b.pk].error
    assert error is not None
    assert error.startswith("cannot run here: ")
    assert "arm64" in error


async def test_a_second_pass_changes_nothing_and_writes_nothing(world: World) -> None:
    await world.device("a", {"site": "lab"}, ARM)
    await world.device("b", {"site": "lab"}, X86)
    job = await world.job(selector="site=lab")
    await assign(world.db, job, "1")
    before = await world.rows(job)

    assert await assign(world.db, job, "1") == set()
    assert await world.rows(job) == before  # updated_at included: no row was rewritten


async def test_a_job_with_no_targets_writes_nothing(world: World) -> None:
    await world.device("a", {"site": "home"}, ARM)
    job = await world.job(selector="site=lab")
    assert await assign(world.db, job, "1") == set()
    assert await world.rows(job) == {}


async def test_an_upgrade_pushes_every_eligible_device_and_retargets_all(world: World) -> None:
    a = await world.device("a", {"site": "lab"}, ARM)
    b = await world.device("b", {"site": "lab"}, X86)
    job = await world.job(selector="site=lab")
    await assign(world.db, job, "1")
    await world.set_state(job, a, "running")

    assert await assign(world.db, job, "1", upgraded=True) == {a.pk}  # e.g. a new environment
    assert await assign(world.db, job, "2") == {a.pk}  # a new version, even unflagged
    rows = await world.rows(job)
    assert {pk: r.target_version for pk, r in rows.items()} == {a.pk: "2", b.pk: "2"}
    assert rows[a.pk].state == "running"  # the device reports its own progress
    assert (rows[b.pk].state, rows[b.pk].eligible) == ("failed", False)
    assert await assign(world.db, job, "2") == set()


async def test_a_device_relabeled_out_is_unassigned_and_back_in_is_reassigned(
    world: World,
) -> None:
    a = await world.device("a", {"site": "lab"}, ARM)
    b = await world.device("b", {"site": "lab"}, ARM)
    job = await world.job(selector="site=lab")
    await assign(world.db, job, "1")
    await world.set_state(job, a, "running")

    await world.set_device(a, labels={"site": "home"})
    assert await assign(world.db, job, "1") == {a.pk}
    rows = await world.rows(job)
    assert (rows[a.pk].assigned, rows[a.pk].state) == (False, "running")
    assert rows[b.pk].assigned
    assert await assign(world.db, job, "1") == set()  # unassigning is idempotent too

    await world.set_device(a, labels={"site": "lab"})
    assert await assign(world.db, job, "1") == {a.pk}
    assert (await world.rows(job))[a.pk].assigned


async def test_an_ineligible_device_leaving_the_selection_is_not_pushed(world: World) -> None:
    """It never had the job, so there is nothing to take away from it."""
    b = await world.device("b", {"site": "lab"}, X86)
    job = await world.job(selector="site=lab")
    await assign(world.db, job, "1")
    await world.set_device(b, labels={})
    assert await assign(world.db, job, "1") == set()
    assert not (await world.rows(job))[b.pk].assigned


async def test_new_facts_make_a_device_eligible_or_ineligible(world: World) -> None:
    a = await world.device("a", {"site": "lab"}, X86)
    job = await world.job(selector="site=lab")
    await assign(world.db, job, "1")
    assert (await world.rows(job))[a.pk].state == "failed"

    await world.set_device(a, facts=ARM)
    assert await assign(world.db, job, "1") == {a.pk}
    row = (await world.rows(job))[a.pk]
    assert (row.eligible, row.state, row.error) == (True, "pending", None)

    await world.set_device(a, facts=X86)
    assert await assign(world.db, job, "1") == {a.pk}
    row = (await world.rows(job))[a.pk]
    assert (row.eligible, row.state) == (False, "failed")
    assert row.error is not None
    assert row.error.startswith("cannot run here: ")


async def test_facts_that_do_not_matter_change_nothing(world: World) -> None:
    a = await world.device("a", {"site": "lab"}, ARM)
    job = await world.job(selector="site=lab")
    await assign(world.db, job, "1")
    before = await world.rows(job)
    await world.set_device(a, facts={**ARM, "resources": {"arch": "arm64", "disk_free": 12345}})
    assert await assign(world.db, job, "1") == set()
    assert await world.rows(job) == before


@pytest.mark.parametrize("state", ["cancelled", "expired"])
async def test_a_terminal_job_leaves_every_device(world: World, state: str) -> None:
    a = await world.device("a", {"site": "lab"}, ARM)
    b = await world.device("b", {"site": "lab"}, X86)
    job = await world.job(selector="site=lab")
    await assign(world.db, job, "1")
    job.state = state

    assert await assign(world.db, job, "1") == {a.pk}  # b never had it
    rows = await world.rows(job)
    assert not rows[a.pk].assigned
    assert not rows[b.pk].assigned
    assert await assign(world.db, job, "1") == set()


async def test_a_job_before_its_start_is_on_no_device_and_arrives_at_its_start(
    world: World,
) -> None:
    a = await world.device("a", {"site": "lab"}, ARM)
    job = await world.job(selector="site=lab", start=utcnow() + timedelta(hours=1))
    assert await assign(world.db, job, "1") == set()
    assert await world.rows(job) == {}
    job.start = utcnow() - timedelta(seconds=1)
    assert await assign(world.db, job, "1") == {a.pk}


async def test_a_job_past_its_end_leaves_its_devices(world: World) -> None:
    a = await world.device("a", {"site": "lab"}, ARM)
    job = await world.job(selector="site=lab")
    await assign(world.db, job, "1")
    job.end = utcnow() - timedelta(seconds=1)
    assert await assign(world.db, job, "1") == {a.pk}
    assert not (await world.rows(job))[a.pk].assigned


async def test_thousands_of_devices_are_inserted_and_updated_in_batches(world: World) -> None:
    """More rows than one batch (1,000) on both paths: every device is covered."""
    count = 2_345
    await world.many_devices(count, lambda i: ARM if i % 5 else X86)
    job = await world.job(selector="site=lab")

    changed = await assign(world.db, job, "1")
    rows = await world.rows(job)
    assert len(rows) == count
    eligible = {pk for pk, r in rows.items() if r.eligible}
    assert len(eligible) == count - len(range(0, count, 5))  # every fifth is amd64
    assert changed == eligible

    job.state = "cancelled"
    assert await assign(world.db, job, "1") == eligible
    assert not any(r.assigned for r in (await world.rows(job)).values())
