"""Reading a job's data: filtered pages of records, the summary, files.

Pages and downloads walk ``data_records`` in ``pk`` order (the order the
server stored them, which per device and stream is seq order, because an
agent sends its oldest records first and one batch at a time), with the
``(job_pk, pk)`` index; the cursor is the last pk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.data.tables import DataFile, DataRecordRow, DataStream
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import NotFound
from edgefleet.server.jobs.tables import Job
from edgefleet.server.pagination import Page, PageParams, keyset_page, keyset_rows


@dataclass
class Filters:
    job_pk: int
    device: str | None = None
    stream: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Any) -> Any:
        query = query.where(DataRecordRow.job_pk == self.job_pk)
        if self.device is not None:
            query = query.where(DataRecordRow.device_id == self.device)
        if self.stream is not None:
            query = query.where(DataRecordRow.stream == self.stream)
        if self.since is not None:
            query = query.where(DataRecordRow.time >= self.since)
        if self.until is not None:
            query = query.where(DataRecordRow.time < self.until)
        return query


async def device_id(db: AsyncSession, job: Job, ref: str | None) -> str | None:
    """A device of the job's project by id or name; an unknown ref is taken as the
    id of a device since deleted (its records stay with the job)."""
    if ref is None:
        return None
    found = await db.scalar(
        select(Device.id).where(
            Device.project_pk == job.project_pk, or_(Device.id == ref, Device.name == ref)
        )
    )
    return found or ref


COLUMNS = (
    DataRecordRow.pk,
    DataRecordRow.device_id,
    DataRecordRow.stream,
    DataRecordRow.seq,
    DataRecordRow.time,
    DataRecordRow.record_id,
    DataRecordRow.payload,
)


async def rows(db: AsyncSession, filters: Filters, after: int, limit: int) -> list[Any]:
    query = filters.apply(select(*COLUMNS).where(DataRecordRow.pk > after))
    return list((await db.execute(query.order_by(DataRecordRow.pk).limit(limit))).all())


async def record_page(db: AsyncSession, filters: Filters, page: PageParams) -> Page[Any]:
    """One page of records (rows of :data:`COLUMNS`) for ``GET /jobs/{job}/data``."""
    query = filters.apply(select(*COLUMNS))
    return await keyset_rows(db, query, DataRecordRow.pk, page, key=lambda row: int(row.pk))


async def files(
    db: AsyncSession, job: Job, page: PageParams, device: str | None = None
) -> Page[DataFile]:
    """The job's files, oldest first; ``device`` an id or name (see :func:`device_id`)."""
    query = select(DataFile).where(DataFile.job_pk == job.pk)
    device_ref = await device_id(db, job, device)
    if device_ref is not None:
        query = query.where(DataFile.device_id == device_ref)
    return await keyset_page(db, query, DataFile.pk, page)


async def count(db: AsyncSession, filters: Filters) -> int:
    return int(await db.scalar(filters.apply(select(func.count(DataRecordRow.pk)))) or 0)


async def summary(db: AsyncSession, job: Job) -> list[dict[str, Any]]:
    names = dict(
        (
            await db.execute(
                select(Device.id, Device.name).where(Device.project_pk == job.project_pk)
            )
        ).all()
    )
    files = {
        d: (n, s)
        for d, n, s in (
            await db.execute(
                select(DataFile.device_id, func.count(), func.coalesce(func.sum(DataFile.size), 0))
                .where(DataFile.job_pk == job.pk)
                .group_by(DataFile.device_id)
            )
        ).all()
    }
    items = []
    for s in await db.scalars(
        select(DataStream)
        .where(DataStream.job_pk == job.pk)
        .order_by(DataStream.device_id, DataStream.stream)
    ):
        items.append(
            {
                "device": s.device_id,
                "device_name": names.get(s.device_id),
                "stream": s.stream,
                "records": s.records,
                "bytes": s.bytes,
                "last_seq": s.last_seq,
                "first_time": s.first_time,
                "last_time": s.last_time,
                "backlog": s.pending,
                "backlog_bytes": s.pending_bytes,
                "oldest_backlog": s.oldest_pending,
                "accepted_on_device": s.accepted,
                "evicted": s.evicted,
                "rejected": s.rejected,
                "reported_at": s.reported_at,
                "files": files.get(s.device_id, (0, 0))[0],
            }
        )
    for device, (n, _size) in files.items():
        if not any(i["device"] == device for i in items):
            items.append(
                {"device": device, "device_name": names.get(device), "stream": None, "files": n}
            )
    return items


async def file(db: AsyncSession, job: Job, ref: str) -> DataFile:
    found = await db.scalar(select(DataFile).where(DataFile.job_pk == job.pk, DataFile.id == ref))
    if found is None:
        raise NotFound(f"file {ref!r} not found in job {job.id}")
    return found
