"""Which jobs a device may write collected data for, in one query.

A device writes only for jobs it has (had) a ``job_devices`` row for; records
of other jobs are refused, and so are a job's records once this device has
stored ``data_max_records_per_device`` of them. Every batch asks again (a job
deleted or unassigned a moment ago is refused at once): the job, whether the
device is linked to it and what it stored so far come back in one Core
statement built once, not three ORM queries per batch (those cost the server
several milliseconds of CPU per batch, a batch being as small as a few
dozen records when a lone client posts them, issue 16).
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Select, bindparam, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.agent_session import DeviceRef
from edgefleet.server.data.tables import DataStream
from edgefleet.server.jobs.tables import Job, JobDevice


class JobRef(NamedTuple):
    """What ingest needs of a job: its keys and its project (for events)."""

    pk: int
    id: str
    project_pk: int


_jobs = Job.__table__.c
_links = JobDevice.__table__.c
_streams = DataStream.__table__.c


def _statement() -> Select[tuple[int, str, int, bool, int | None]]:
    linked = exists().where(_links.job_pk == _jobs.pk, _links.device_pk == bindparam("device_pk"))
    stored = (
        select(func.sum(_streams.records))
        .where(_streams.job_pk == _jobs.pk, _streams.device_id == bindparam("device_id"))
        .scalar_subquery()
    )
    return select(
        _jobs.pk, _jobs.id, _jobs.project_pk, linked.label("linked"), stored.label("stored")
    ).where(_jobs.id.in_(bindparam("ids", expanding=True)))


_STATEMENT = _statement()


async def writable(
    db: AsyncSession, device: DeviceRef, job_ids: set[str], max_records: int | None = None
) -> tuple[dict[str, JobRef], dict[str, str]]:
    """The jobs this device may write for, and why the others are refused
    (``max_records``: also refuse a job this device stored that many records of)."""
    if not job_ids:
        return {}, {}
    connection = await db.connection()
    result = await connection.execute(
        _STATEMENT, {"device_pk": device.pk, "device_id": device.id, "ids": sorted(job_ids)}
    )
    found = {row.id: row for row in result}
    allowed: dict[str, JobRef] = {}
    refused: dict[str, str] = {}
    for job_id in job_ids:
        row = found.get(job_id)
        if row is None:
            refused[job_id] = "the job does not exist on the server (deleted?)"
        elif not row.linked:
            refused[job_id] = "the job was never assigned to this device"
        elif max_records is not None and row.stored is not None and row.stored >= max_records:
            refused[job_id] = (
                f"this device stored {int(row.stored)} records for job {job_id}, "
                f"its limit (data_max_records_per_device {max_records})"
            )
        else:
            allowed[job_id] = JobRef(int(row.pk), str(row.id), int(row.project_pk))
    return allowed, refused
