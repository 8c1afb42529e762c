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


async def test_a_repeated_report_is_not_written_again(ctx: ServerContext) -> None:
    """Agents repeat their statuses in every hello: after a restart the flush of
    thousands of unchanged reports must not rewrite (and commit) their rows,
    while a report that changed anything is still written."""
    async with ctx.sessions() as db:
        world = await World(db).setup()
        await world.many_devices(3, lambda _i: ARM)
        job = await world.job(selector="site=lab")
        await assign(db, job, "1")
        await db.commit()
        devices = (await db.execute(select(Device.pk, Device.id, Device.name))).all()
    sessions = [
        AgentSession(
            DeviceRef(pk=pk, id=device_id, name=name, project_pk=world.project_pk),
            Link(MemoryTransport(), odd=True, on_message=_ignore),
        )
        for pk, device_id, name in devices
    ]

    def report(image: str = "nginx:1") -> JobStatus:
        services = {"web": ServiceStatus(state="running", image=image)}
        return JobStatus(job_id=job.id, state="running", version="1", services=services)

    sink = job_status.StatusSink(ctx)
    for session in sessions:
        sink.add(session, [report()])
    await sink.flush()
    async with ctx.sessions() as db:
        written = dict((await db.execute(select(JobDevice.pk, JobDevice.updated_at))).all())

    for session in sessions:  # the same again, as hellos after a reconnect say it
        sink.add(session, [report()])
    with counting_commits(ctx.sessions) as commits:
        await sink.flush()
    assert commits.count == 0
    async with ctx.sessions() as db:
        again = dict((await db.execute(select(JobDevice.pk, JobDevice.updated_at))).all())
    assert again == written

    sink.add(sessions[0], [report(image="nginx:2")])  # one service changed its image
    with counting_commits(ctx.sessions) as commits:
        await sink.flush()
    assert commits.count == 1
    async with ctx.sessions() as db:
        images = (await db.execute(select(JobDevice.device_pk, JobDevice.services))).all()
    changed = {pk: services["web"]["image"] for pk, services in images}
    assert changed[sessions[0].device.pk] == "nginx:2"
    assert all(changed[s.device.pk] == "nginx:1" for s in sessions[1:])
