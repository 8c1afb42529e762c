"""An instance as the API shows it: its job's state and devices, who has it,
and the proxy paths that open it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.applications.tables import Application, AppVersion
from edgefleet.server.auth.tables import User
from edgefleet.server.devices.tables import Device
from edgefleet.server.instances.schemas import InstanceDevice, InstanceOut
from edgefleet.server.instances.service import STOPPED, job_of
from edgefleet.server.instances.tables import Instance, InstanceShare
from edgefleet.server.jobs.tables import JobDevice
from edgefleet.server.projects import service as projects
from edgefleet.server.remote.targets import declared_ports


async def output(db: AsyncSession, instance: Instance) -> InstanceOut:
    job = await job_of(db, instance)
    app = await db.scalar(select(Application).where(Application.pk == job.application_pk))
    version = await db.scalar(select(AppVersion.version).where(AppVersion.pk == job.version_pk))
    owner = await db.scalar(select(User.name).where(User.pk == instance.owner_pk))
    shared = await db.scalars(
        select(User.name)
        .join(InstanceShare, InstanceShare.user_pk == User.pk)
        .where(InstanceShare.instance_pk == instance.pk)
        .order_by(User.name)
    )
    rows = await db.execute(
        select(Device.id, Device.name, JobDevice.state, JobDevice.error)
        .join(JobDevice, JobDevice.device_pk == Device.pk)
        .where(JobDevice.job_pk == job.pk, JobDevice.assigned.is_(True))
        .order_by(Device.pk)
    )
    devices = [
        InstanceDevice(device=d, device_name=n, state=s, error=e) for d, n, s, e in rows.all()
    ]
    project = (await projects.names(db, {job.project_pk}))[job.project_pk]
    assert app is not None
    urls = [
        f"/proxy/{job.id}/{d.device}/{service}/{port}/"
        for d in devices
        for service in sorted((job.resolved or {}).get("services", {}))
        for port in declared_ports(job, service)
    ]
    return InstanceOut(
        id=instance.id,
        app=app.name,
        application_id=app.id,
        version=version or "",
        project=project.name,
        project_id=project.id,
        job=job.id,
        owner=owner or "",
        shared_with=list(shared),
        state="stopped" if job.state in STOPPED else job.state,
        stopped_reason=instance.stopped_reason,
        idle_timeout=instance.idle_timeout,
        last_access=instance.last_access,
        created_at=instance.created_at,
        devices=devices,
        urls=[] if job.state in STOPPED else urls,
    )
