"""Resolving what a remote operation points at, with the caller's rights.

Device-level operations need the operator role; workload-level ones need a
role that may run commands in workloads (developer, operator, owner); the
proxy and logs only need membership, and the proxy and a job's port-forward
reach only the ports its services declare (:func:`service_port`): any other
port is a raw device port, which needs the right to run commands on the
device. Anything outside the caller's projects is 404, as everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.devices import service as devices
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import NotFound
from edgefleet.server.jobs import service as jobs
from edgefleet.server.jobs.tables import Job, JobDevice


@dataclass(frozen=True)
class DeviceTarget:
    pk: int
    id: str
    name: str
    project_pk: int


@dataclass(frozen=True)
class WorkloadTarget:
    job: Job
    device: DeviceTarget
    service: str | None


async def device(
    db: AsyncSession, caller: Caller, ref: str, permission: Permission
) -> DeviceTarget:
    found, _ = await devices.find(db, caller, ref)
    caller.require(found.project_pk, permission, f"device {ref!r}")
    return DeviceTarget(found.pk, found.id, found.name, found.project_pk)


async def workload(
    db: AsyncSession,
    caller: Caller,
    job_ref: str,
    device_ref: str,
    service: str | None,
    permission: Permission,
) -> WorkloadTarget:
    job = await jobs.find(db, caller, job_ref)
    caller.require(job.project_pk, permission, f"job {job_ref!r}")
    row = (
        await db.execute(
            select(Device)
            .join(JobDevice, JobDevice.device_pk == Device.pk)
            .where(
                JobDevice.job_pk == job.pk, (Device.id == device_ref) | (Device.name == device_ref)
            )
        )
    ).scalar()
    if row is None:
        raise NotFound(f"job {job.id} does not run on a device {device_ref!r}", field="device")
    services = (job.resolved or {}).get("services", {})
    if service is not None and service not in services:
        raise NotFound(
            f"job {job.id} has no service {service!r} (it has: {', '.join(sorted(services))})",
            field="service",
        )
    return WorkloadTarget(job, DeviceTarget(row.pk, row.id, row.name, row.project_pk), service)


def declared_ports(job: Job, service: str) -> list[int]:
    """The TCP ports a service of the job's current version declares (``ports:``
    targets and ``expose:``): the only ones the proxy and a job port-forward reach."""
    spec = (job.resolved or {}).get("services", {}).get(service) or {}
    found = {
        int(port["target"])
        for port in spec.get("ports", [])
        if port.get("protocol", "tcp") == "tcp"
    }
    found.update(int(port) for port in spec.get("expose", []))
    return sorted(found)


async def service_port(
    db: AsyncSession,
    caller: Caller,
    job_ref: str,
    device_ref: str,
    service: str,
    port: int,
    permission: Permission,
) -> WorkloadTarget:
    """:func:`workload`, and the port must be one the service declares: anything
    else on the device is a raw device port, an exec-level right (``device``
    with :attr:`Permission.EXEC_DEVICE`), whatever the caller's role."""
    target = await workload(db, caller, job_ref, device_ref, service, permission)
    declared = declared_ports(target.job, service)
    if port not in declared:
        listed = ", ".join(map(str, declared)) or "none"
        raise NotFound(
            f"service {service} of job {target.job.id} declares no port {port} "
            f"(declared in its ports/expose: {listed})",
            field="port",
        )
    return target


async def job_devices(db: AsyncSession, job: Job, device_ref: str | None) -> list[DeviceTarget]:
    query = (
        select(Device)
        .join(JobDevice, JobDevice.device_pk == Device.pk)
        .where(JobDevice.job_pk == job.pk, JobDevice.eligible.is_(True))
        .order_by(Device.name)
    )
    if device_ref:
        query = query.where((Device.id == device_ref) | (Device.name == device_ref))
    found = [DeviceTarget(d.pk, d.id, d.name, d.project_pk) for d in await db.scalars(query)]
    if device_ref and not found:
        raise NotFound(f"job {job.id} does not run on a device {device_ref!r}", field="device")
    return found
