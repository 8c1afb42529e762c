"""Fleet gauges read from the database: a handful of GROUP BY queries whose
cost does not grow with how often Prometheus scrapes, because the answer is
reused for ``metrics_cache_seconds`` (one refresh at a time, others wait)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.alerts.tables import Alert
from edgefleet.server.data.tables import DataStream
from edgefleet.server.db.base import utcnow
from edgefleet.server.devices.query import online_clause
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.jobs.tables import Job, JobDevice
from edgefleet.server.projects.tables import Project


@dataclass(frozen=True)
class ProjectDevices:
    total: int
    online: int
    ready: int


@dataclass(frozen=True)
class FleetCounts:
    """What the fleet looks like, as of one refresh."""

    devices: dict[str, ProjectDevices] = field(default_factory=dict)  # by project name
    jobs: dict[str, int] = field(default_factory=dict)  # by state
    job_devices: dict[str, int] = field(default_factory=dict)  # by state
    data_records: int = 0  # stored, over all jobs and devices
    alerts_firing: dict[str, int] = field(default_factory=dict)  # by project name


async def read(db: AsyncSession) -> FleetCounts:
    """Five aggregate queries, whatever the fleet's size."""
    online = online_clause(utcnow())
    ready = and_(
        online,
        Device.runtime_healthy.is_(True),
        Device.applied_generation >= Device.desired_generation,
    )
    rows = await db.execute(
        select(
            Project.name,
            func.count(Device.pk),
            func.count(case((online, 1))),
            func.count(case((ready, 1))),
        )
        .select_from(Project)
        .outerjoin(Device, Device.project_pk == Project.pk)
        .outerjoin(Presence, Presence.device_pk == Device.pk)
        .group_by(Project.name)
    )
    devices = {
        name: ProjectDevices(int(total), int(on), int(rdy)) for name, total, on, rdy in rows.all()
    }
    jobs = await db.execute(select(Job.state, func.count()).group_by(Job.state))
    job_devices = await db.execute(select(JobDevice.state, func.count()).group_by(JobDevice.state))
    records = await db.scalar(select(func.coalesce(func.sum(DataStream.records), 0)))
    firing = await db.execute(
        select(Project.name, func.count())
        .join(Alert, Alert.project_pk == Project.pk)
        .where(Alert.state == "firing")
        .group_by(Project.name)
    )
    return FleetCounts(
        devices=devices,
        jobs={state: int(n) for state, n in jobs.all()},
        job_devices={state: int(n) for state, n in job_devices.all()},
        data_records=int(records or 0),
        alerts_firing={name: int(n) for name, n in firing.all()},
    )


class FleetCache:
    """The last :class:`FleetCounts`, refreshed when older than ``max_age`` seconds."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._counts: FleetCounts | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, sessions: async_sessionmaker[AsyncSession]) -> FleetCounts:
        if self._fresh():
            assert self._counts is not None
            return self._counts
        async with self._lock:  # a burst of scrapes makes one round of queries
            if not self._fresh():
                async with sessions() as db:
                    self._counts = await read(db)
                self._at = time.monotonic()
            assert self._counts is not None
            return self._counts

    def _fresh(self) -> bool:
        return self._counts is not None and time.monotonic() - self._at < self.max_age
