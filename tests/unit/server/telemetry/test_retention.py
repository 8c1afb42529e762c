"""The rollup and retention pass on a real SQLite file: samples are folded into
their buckets once (also when they arrive late), folded raw samples past the raw
retention go while their rollups answer the API's query, and rollups and stored
logs past theirs go too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.devices.tables import Device
from edgefleet.server.projects.tables import Project
from edgefleet.server.telemetry import query, retention, store
from edgefleet.server.telemetry.rollup import cutoffs
from edgefleet.server.telemetry.tables import TelemetryRollup, TelemetrySample, WorkloadLog
from edgefleet.wire.telemetry import Sample

Sessions = async_sessionmaker[AsyncSession]
STEP = 900


async def device(db: AsyncSession) -> int:
    project = Project(id=new_id("p"), name="default")
    db.add(project)
    await db.flush()
    row = Device(id=new_id("d"), project_pk=project.pk, name="pi", credential_hash=new_id("c"))
    db.add(row)
    await db.commit()
    return row.pk


def samples(start: datetime, minutes: int, cpu: float, first_seq: int = 1) -> list[Sample]:
    return [
        Sample(
            seq=first_seq + n,
            time=(start + timedelta(minutes=n)).timestamp(),
            cpu=cpu,
            memory=40,
            disk=50,
        )
        for n in range(minutes)
    ]


async def count(db: AsyncSession, table: type) -> int:
    return int(await db.scalar(select(func.count()).select_from(table)) or 0)


async def test_fold_late_samples_and_expire(sessions: Sessions) -> None:
    now = utcnow()
    start = datetime.fromtimestamp(int(now.timestamp()) // 86400 * 86400 - 3 * 86400, UTC)
    async with sessions() as db:
        pk = await device(db)
        await store.store_samples(db, pk, samples(start, 10, cpu=10))
        assert await retention.fold(db, STEP) == 10
        assert await retention.fold(db, STEP) == 0  # folded once
        # five more of the same bucket arrive late (the device was offline)
        await store.store_samples(db, pk, samples(start + timedelta(minutes=10), 5, 70, 11))
        await store.store_samples(db, pk, samples(start + timedelta(minutes=10), 5, 70, 11))
        assert await retention.fold(db, STEP) == 5
        (bucket,) = list(await db.scalars(select(TelemetryRollup)))
        assert bucket.count == 15 and abs(bucket.cpu - 30.0) < 1e-9 and bucket.cpu_max == 70
        # recent samples, not folded yet: kept whatever their age would say
        await store.store_samples(db, pk, samples(now - timedelta(minutes=5), 3, 5, 100))
        await db.merge(
            WorkloadLog(device_pk=pk, job_id="j1", service="s", updated_at=now - timedelta(days=8))
        )
        await db.commit()
        await retention.expire(db, cutoffs(now, raw_hours=48, rollup_days=30, log_days=7))
        assert await count(db, TelemetrySample) == 3  # the 15 folded old ones went
        assert await count(db, WorkloadLog) == 0
        # the API's query: the old bucket from its rollup, then the raw samples
        points, _next = await query.metrics(
            db,
            pk,
            since=start - timedelta(hours=1),
            until=now + timedelta(hours=1),
            step=None,
            limit=100,
        )
        assert [p.count for p in points] == [15, 1, 1, 1]
        await retention.expire(db, cutoffs(now, raw_hours=48, rollup_days=1, log_days=7))
        assert await count(db, TelemetryRollup) == 0


async def test_pages_do_not_repeat_or_skip(sessions: Sessions) -> None:
    start = utcnow() - timedelta(hours=1)
    async with sessions() as db:
        pk = await device(db)
        await store.store_samples(db, pk, samples(start, 25, cpu=1))
        seen: list[datetime] = []
        since, until = start - timedelta(minutes=1), utcnow()
        while True:
            points, after = await query.metrics(
                db, pk, since=since, until=until, step=None, limit=10
            )
            seen += [p.time for p in points]
            if after is None:
                break
            since = query.from_micros(after)
        assert len(seen) == 25 == len(set(seen))
        buckets, after = await query.metrics(db, pk, since=start, until=until, step=600, limit=100)
        assert sum(b.count for b in buckets) == 25 and after is None
