"""A job naming its reservation: checked at creation, recorded beside the job."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.db.base import utcnow
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import Invalid
from edgefleet.server.reservations.tables import Reservation, ReservationDevice, ReservationJob


async def for_job(db: AsyncSession, project_pk: int, ref: str) -> Reservation:
    """The reservation a new job names: it must be its project's and not over."""
    found = await db.scalar(select(Reservation).where(Reservation.id == ref))
    if found is None or found.project_pk != project_pk:
        raise Invalid(f"no reservation {ref!r} in this job's project", field="reservation")
    if found.end <= utcnow():
        raise Invalid(f"reservation {ref} ended at {found.end.isoformat()}", field="reservation")
    return found


async def device_ids(db: AsyncSession, reservation: Reservation) -> list[str]:
    rows = await db.scalars(
        select(Device.id)
        .join(ReservationDevice, ReservationDevice.device_pk == Device.pk)
        .where(ReservationDevice.reservation_pk == reservation.pk)
        .order_by(Device.pk)
    )
    return list(rows)


def attach(db: AsyncSession, job_pk: int, reservation: Reservation) -> None:
    db.add(ReservationJob(job_pk=job_pk, reservation_pk=reservation.pk))


def id_of_job(job_pk: Any) -> Any:
    """The id of the reservation a job named (NULL if none), as a scalar
    subquery, so a job's view reads it in the same statement as the job's other
    facts; ``job_pk`` may be a column."""
    return (
        select(Reservation.id)
        .join(ReservationJob, ReservationJob.reservation_pk == Reservation.pk)
        .where(ReservationJob.job_pk == job_pk)
        .scalar_subquery()
    )
