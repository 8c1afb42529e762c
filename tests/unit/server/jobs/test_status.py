"""The job status sink against a real SQLite file: a flush larger than a
chunk writes every report (state, services, version), a transaction per
chunk, and the job's overall state follows its devices."""

from __future__ import annotations

import math

from sqlalchemy import select

from edgefleet.server.agent_session import AgentSession, DeviceRef
from edgefleet.server.context import ServerContext
from edgefleet.server.devices.tables import Device
from edgefleet.server.jobs import status as job_status
from edgefleet.server.jobs.assign import assign
from edgefleet.server.jobs.tables import Job, JobDevice
from edgefleet.wire.link import Link
from edgefleet.wire.messages import Message
from edgefleet.wire.status import JobStatus, ServiceStatus
from tests.support.commits import counting_commits
from tests.unit.server.gateway.test_hub import MemoryTransport
from tests.unit.server.jobs.test_assign import ARM, World


async def _ignore(_message: Message) -> None:
    return None


async def test_a_flush_of_more_than_a_chunk_writes_every_report(ctx: ServerContext) -> None:
    n = job_status.CHUNK * 2 + 7
    async with ctx.sessions() as db:
        world = await World(db).setup()
        await world.many_devices(n, lambda _i: ARM)
        job = await world.job(selector="site=lab")
        await assign(db, job, "1")
        await db.commit()
        devices = (await db.execute(select(Device.pk, Device.id, Device.name))).all()
    sink = job_status.StatusSink(ctx)
    for pk, device_id, name in devices:
        ref = DeviceRef(pk=pk, id=device_id, name=name, project_pk=world.project_pk)
        session = AgentSession(ref, Link(MemoryTransport(), odd=True, on_message=_ignore))
        report = JobStatus(
            job_id=job.id,
            state="running",
            version="1",
            services={"web": ServiceStatus(state="running", image=f"nginx:{pk}")},
        )
        sink.add(session, [report])
    with counting_commits(ctx.sessions) as commits:
        await sink.flush()

    async with ctx.sessions() as db:
        rows = (
            await db.execute(
                select(JobDevice.device_pk, JobDevice.state, JobDevice.version, JobDevice.services)
            )
        ).all()
        shown = await db.scalar(select(Job.state).where(Job.pk == job.pk))
    assert len(rows) == n
    assert all(state == "running" and version == "1" for _, state, version, _ in rows)
    assert all(services["web"]["image"] == f"nginx:{pk}" for pk, _, _, services in rows)
    assert shown == "running"
    chunks = math.ceil(n / job_status.CHUNK)
    assert chunks <= commits.count <= chunks + 1  # one per chunk, and the job's new state
