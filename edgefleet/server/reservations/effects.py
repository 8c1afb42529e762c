"""Re-applying jobs after a loan or a booking changes: each job's assignment
is recomputed (:func:`edgefleet.server.jobs.service.apply`), which gates
devices (:mod:`.gate`) and pushes the desired state that changed."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.context import ServerContext
from edgefleet.server.jobs import service as jobs
from edgefleet.server.jobs.tables import Job, JobDevice
from edgefleet.server.reservations.tables import ReservationJob

TERMINAL = ("cancelled", "expired")


async def reapply_devices(
    ctx: ServerContext,
    db: AsyncSession,
    device_pks: Iterable[int],
    project_pk: int | None = None,
    reservation_pks: Iterable[int] = (),
) -> int:
    """Every live job on these devices (of ``project_pk`` only, if given), and
    every job that named one of these reservations; returns how many."""
    pks = sorted(set(device_pks))
    on_devices = select(JobDevice.job_pk).where(JobDevice.device_pk.in_(pks))
    named = select(ReservationJob.job_pk).where(
        ReservationJob.reservation_pk.in_(sorted(set(reservation_pks)))
    )
    query = select(Job).where(Job.state.not_in(TERMINAL), Job.pk.in_(on_devices.union(named)))
    if project_pk is not None:
        query = query.where(Job.project_pk == project_pk)
    found = list(await db.scalars(query.order_by(Job.pk)))
    for job in found:
        await jobs.apply(ctx, db, job)
    return len(found)


async def loans_changed(ctx: ServerContext, project_pk: int | None) -> None:
    """A new loan: the guest's selector jobs may now reach the device."""
    if project_pk is not None:
        await ctx.hub.fleet_changed(project_pk)
    else:
        await ctx.scheduler.reconcile_projects(None)
