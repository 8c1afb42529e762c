"""Ingest.store on a real database, both engines: each record stored and
counted once however often (or concurrently) its batch arrives, records of
jobs a device may not write refused, and rows written by the bulk insert
reading back like any other (times, payloads, counters)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.agent_session import DeviceRef
from edgefleet.server.applications.tables import Application, AppVersion
from edgefleet.server.data import rows
from edgefleet.server.data.ingest import Ingest
from edgefleet.server.data.tables import DataRecordRow, DataStream
from edgefleet.server.devices.tables import Device
from edgefleet.server.jobs.tables import Job, JobDevice
from edgefleet.server.projects.tables import Project
from edgefleet.server.settings import ServerSettings
from edgefleet.wire.messages import DataRecord
from tests.unit.server.conftest import store_sessions

T0 = 1_764_000_000.123456


class Events:
    def __init__(self) -> None:
        self.recorded: list[tuple[Any, ...]] = []

    def record(self, *args: Any, **kwargs: Any) -> None:
        self.recorded.append(args)


@pytest.fixture
async def sessions(
    database_url: str | None, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with store_sessions(database_url, tmp_path) as made:
        yield made


async def _fleet(sessions: async_sessionmaker[AsyncSession]) -> DeviceRef:
    """One device, linked to job j1 (and j-full); job j2 exists but is not its."""
    async with sessions() as db:
        project = Project(id="p1", name="north")
        db.add(project)
        await db.flush()
        app = Application(id="a1", project_pk=project.pk, name="probe")
        db.add(app)
        await db.flush()
        version = AppVersion(id="v1", application_pk=app.pk, version="1")
        device = Device(id="d1", project_pk=project.pk, name="pi", credential_hash="h1")
        db.add_all([version, device])
        await db.flush()
        jobs = [
            Job(id=j, project_pk=project.pk, application_pk=app.pk, version_pk=version.pk)
            for j in ("j1", "j2", "j-full")
        ]
        db.add_all(jobs)
        await db.flush()
        db.add_all([JobDevice(job_pk=jobs[i].pk, device_pk=device.pk) for i in (0, 2)])
        db.add(DataStream(job_pk=jobs[2].pk, device_id="d1", stream="s", records=10))
        await db.commit()
        return DeviceRef(pk=device.pk, id=device.id, name=device.name, project_pk=project.pk)


def _ingest(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> Ingest:
    settings = ServerSettings(data_dir=tmp_path, data_max_records_per_device=10)
    ctx = SimpleNamespace(settings=settings, session=sessions, events=Events())
    return Ingest(ctx)  # type: ignore[arg-type]


def _record(seq: int, job: str = "j1", stream: str = "s", rid: str | None = None) -> DataRecord:
    text = json.dumps({"n": seq, "note": "é"}, indent=1)  # stored re-encoded, compact
    return DataRecord(job=job, stream=stream, seq=seq, time=T0 + seq, id=rid, record=text)


async def _stored(sessions: async_sessionmaker[AsyncSession]) -> list[DataRecordRow]:
    async with sessions() as db:
        return list(await db.scalars(select(DataRecordRow).order_by(DataRecordRow.seq)))


async def _counter(sessions: async_sessionmaker[AsyncSession], job: str = "j1") -> DataStream:
    async with sessions() as db:
        row = await db.scalar(
            select(DataStream).where(
                DataStream.device_id == "d1",
                DataStream.stream == "s",
                DataStream.job_pk == select(Job.pk).where(Job.id == job).scalar_subquery(),
            )
        )
        assert row is not None
        return row


async def test_a_batch_sent_again_is_stored_and_counted_once(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    device = await _fleet(sessions)
    ingest = _ingest(sessions, tmp_path)
    session: Any = SimpleNamespace(device=device)
    batch = [_record(1), _record(2, rid="r2"), _record(3)]
    assert await ingest.store(session, batch) == ({}, {})
    assert await ingest.store(session, batch) == ({}, {})  # a lost ack: all again
    # Overlapping: 2 and 3 again, 4 and 5 new; seq 6 reuses record id r2.
    assert await ingest.store(session, [*batch[1:], _record(4), _record(5), _record(6, rid="r2")])
    stored = await _stored(sessions)
    assert [r.seq for r in stored] == [1, 2, 3, 4, 5]
    assert stored[1].record_id == "r2"
    assert {r.device_id for r in stored} == {"d1"}
    assert stored[0].payload == '{"n":1,"note":"é"}'
    assert stored[0].time == datetime.fromtimestamp(T0 + 1, UTC)
    counter = await _counter(sessions)
    assert counter.records == 5
    assert counter.bytes == sum(len(r.payload.encode()) for r in stored)
    assert counter.last_seq == 5
    assert counter.first_time == datetime.fromtimestamp(T0 + 1, UTC)
    assert counter.last_time == datetime.fromtimestamp(T0 + 5, UTC)


async def test_the_same_batch_stored_twice_at_once_is_counted_once(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """A reconnect can resend a batch while the first copy is still being stored."""
    device = await _fleet(sessions)
    ingest = _ingest(sessions, tmp_path)
    session: Any = SimpleNamespace(device=device)
    batch = [_record(n, stream=f"s{n % 3}") for n in range(1, rows.CHUNK * 2 + 40)]
    await asyncio.gather(ingest.store(session, batch), ingest.store(session, batch))
    stored = await _stored(sessions)
    assert [r.seq for r in stored] == list(range(1, rows.CHUNK * 2 + 40))
    async with sessions() as db:
        counted = await db.scalar(
            select(func.sum(DataStream.records)).where(DataStream.stream.like("s_"))
        )
    assert counted == len(stored)


async def test_records_a_device_may_not_write_are_refused_and_bad_ones_rejected(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    device = await _fleet(sessions)
    ingest = _ingest(sessions, tmp_path)
    session: Any = SimpleNamespace(device=device)
    bad = DataRecord(job="j1", stream="s", seq=3, time=T0, record="[1]")
    refused, rejected = await ingest.store(
        session,
        [
            _record(1),
            _record(2, job="j2"),
            _record(1, job="j-gone"),
            _record(1, job="j-full"),
            bad,
        ],
    )
    assert refused == {
        "j2": "the job was never assigned to this device",
        "j-gone": "the job does not exist on the server (deleted?)",
        "j-full": "this device stored 10 records for job j-full, its limit "
        "(data_max_records_per_device 10)",
    }
    assert rejected == {"j1/s/3": "a record must be a JSON object, not an array"}
    assert [r.seq for r in await _stored(sessions)] == [1]
    assert (await _counter(sessions)).records == 1
    assert (await _counter(sessions, "j-full")).records == 10


@pytest.mark.parametrize(
    "dialect",
    [sqlite.dialect(), postgresql.psycopg.dialect()],  # type: ignore[no-untyped-call]
)
def test_a_records_time_is_bound_as_the_column_type_would_bind_it(dialect: Any) -> None:
    """Rows inserted at the driver level read back like rows SQLAlchemy wrote."""
    column = DataRecordRow.__table__.c.time.type
    process: Any = column.dialect_impl(dialect).bind_processor(dialect)
    _, _, when = rows._binding(dialect)
    assert process is not None
    for seconds in [0.0, 1.5, T0, T0 + 0.000001, 1_900_000_000.999999, 253402300799.0]:
        assert when(seconds) == process(datetime.fromtimestamp(seconds, UTC)), seconds
