"""Writing what devices report: samples (once per device and time) and the
last lines of their workloads (replaced whole, bounded). Owns its commits."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.db.base import utcnow
from edgefleet.server.db.upsert import insert_for
from edgefleet.server.jobs.tables import Job
from edgefleet.server.telemetry.tables import TelemetrySample, WorkloadLog
from edgefleet.wire.telemetry import LogLine, Sample


def _row(device_pk: int, sample: Sample) -> dict[str, object]:
    return {
        "device_pk": device_pk,
        "time": datetime.fromtimestamp(sample.time, UTC),
        "cpu": sample.cpu,
        "memory": sample.memory,
        "disk": sample.disk,
        "memory_used": sample.memory_used,
        "memory_total": sample.memory_total,
        "disk_used": sample.disk_used,
        "disk_total": sample.disk_total,
        "temperature": sample.temperature,
        "net_rx": sample.net_rx,
        "net_tx": sample.net_tx,
        "uptime": sample.uptime,
        "rolled": False,
    }


async def store_samples(db: AsyncSession, device_pk: int, samples: list[Sample]) -> int:
    """Insert the samples not stored yet (a batch sent again stores nothing twice);
    commit. Returns the highest seq, the agent's ack."""
    if not samples:
        return 0
    stmt = insert_for(db, TelemetrySample).values([_row(device_pk, s) for s in samples])
    await db.execute(stmt.on_conflict_do_nothing(index_elements=["device_pk", "time"]))
    await db.commit()
    return max(s.seq for s in samples)


def bounded(lines: list[LogLine], max_lines: int, max_bytes: int) -> tuple[list[LogLine], int]:
    """The newest lines within both bounds (oldest first), and their size."""
    kept: list[LogLine] = []
    size = 0
    for line in reversed(lines[-max_lines:]):
        length = len(line.text.encode()) + 1
        if size + length > max_bytes:
            break
        size += length
        kept.append(line)
    kept.reverse()
    return kept, size


async def store_logs(
    db: AsyncSession,
    device_pk: int,
    project_pk: int,
    job_id: str,
    service: str,
    lines: list[LogLine],
    *,
    max_lines: int,
    max_bytes: int,
    max_services: int,
) -> bool:
    """Replace what is kept for (device, job, service); commit. A job outside the
    device's project is refused (False): a device stores logs only of its own
    project's jobs. Beyond ``max_services`` per device the stalest go."""
    known = await db.scalar(select(Job.pk).where(Job.id == job_id, Job.project_pk == project_pk))
    if known is None:
        return False
    kept, size = bounded(lines, max_lines, max_bytes)
    values = {
        "device_pk": device_pk,
        "job_id": job_id,
        "service": service,
        "updated_at": utcnow(),
        "lines": [line.model_dump(mode="json") for line in kept],
        "size": size,
    }
    stmt = insert_for(db, WorkloadLog).values(values)
    await db.execute(
        stmt.on_conflict_do_update(
            index_elements=["device_pk", "job_id", "service"],
            set_={k: stmt.excluded[k] for k in ("updated_at", "lines", "size")},
        )
    )
    stale = (
        select(WorkloadLog.job_id, WorkloadLog.service)
        .where(WorkloadLog.device_pk == device_pk)
        .order_by(WorkloadLog.updated_at.desc())
        .offset(max_services)
    )
    for old_job, old_service in (await db.execute(stale)).all():
        await db.execute(
            delete(WorkloadLog).where(
                WorkloadLog.device_pk == device_pk,
                WorkloadLog.job_id == old_job,
                WorkloadLog.service == old_service,
            )
        )
    await db.commit()
    return True
