"""Per device, may this job run there *now*? Loans, reservation windows and
exclusive bookings, judged inside assign (:mod:`edgefleet.server.jobs.assign`)
after the device's own eligibility.

A blocked device gets a state and the reason in plain words:

====================================  ==========  =================================
what                                  state       reason
====================================  ==========  =================================
guest job, the loan is gone           failed      loan revoked: ...
guest job, the loan's rights refuse   failed      cannot run here: the loan ...
job names a reservation, device not   failed      not booked by reservation R
in it
... before the window opens           pending     waiting for reservation R ...
... after it closed                   expired     reservation R ended at T
another project's exclusive booking   pending     booked exclusively by another
holds the device now                              project until T
====================================  ==========  =================================
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.devices.tables import Device
from edgefleet.server.jobs.tables import Job
from edgefleet.server.loans.rights import guest_refusal
from edgefleet.server.loans.schemas import LoanRights
from edgefleet.server.loans.tables import DeviceLoan
from edgefleet.server.reservations.tables import Reservation, ReservationDevice, ReservationJob
from edgefleet.spec.model import AppSpec
from edgefleet.wire.messages import DeviceFacts

Block = tuple[str, str]  # (device state, reason)
CHUNK = 900


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


async def foreign(db: AsyncSession, job: Job, pks: list[int]) -> set[int]:
    """Of these devices, those another project owns (the job is a guest there)."""
    found: set[int] = set()
    for start in range(0, len(pks), CHUNK):
        rows = await db.scalars(
            select(Device.pk).where(
                Device.pk.in_(pks[start : start + CHUNK]), Device.project_pk != job.project_pk
            )
        )
        found.update(rows)
    return found


async def gate(
    db: AsyncSession,
    job: Job,
    spec: AppSpec,
    facts: dict[int, dict[str, Any]],
    now: datetime,
    *,
    reservation: Reservation | None = None,
) -> dict[int, Block]:
    """{device pk: block} for the devices of ``facts`` this job may not run on now.
    The reservation the job named is looked up, or, for a job not inserted
    yet (``job.pk`` None), the ``reservation`` it is about to be attached to."""
    pks = sorted(facts)
    blocks: dict[int, Block] = {}
    guests = await foreign(db, job, pks)
    if guests:
        loans: dict[int, DeviceLoan] = {}
        rows = await db.scalars(
            select(DeviceLoan).where(
                DeviceLoan.device_pk.in_(sorted(guests)),
                (DeviceLoan.project_pk == job.project_pk) | DeviceLoan.project_pk.is_(None),
            )
        )
        for loan in rows:
            if loan.device_pk not in loans or loan.project_pk is not None:
                loans[loan.device_pk] = loan
        for pk in guests:
            held = loans.get(pk)
            if held is None:
                blocks[pk] = ("failed", "loan revoked: the device's owner no longer lends it")
                continue
            policy = DeviceFacts.model_validate(facts[pk]).policy
            refusal = guest_refusal(spec, policy, LoanRights.model_validate(held.rights))
            if refusal:
                blocks[pk] = ("failed", f"cannot run here: {refusal}")
    named = reservation
    if job.pk is not None:
        named = await db.scalar(
            select(Reservation)
            .join(ReservationJob, ReservationJob.reservation_pk == Reservation.pk)
            .where(ReservationJob.job_pk == job.pk)
        )
    if named is not None:
        booked = set(
            await db.scalars(
                select(ReservationDevice.device_pk).where(
                    ReservationDevice.reservation_pk == named.pk
                )
            )
        )
        for pk in pks:
            if pk in blocks:
                continue
            if pk not in booked:
                blocks[pk] = ("failed", f"not booked by reservation {named.id}")
            elif now < named.start:
                blocks[pk] = (
                    "pending",
                    f"waiting for reservation {named.id}, which starts {_at(named.start)}",
                )
            elif now >= named.end:
                blocks[pk] = ("expired", f"reservation {named.id} ended {_at(named.end)}")
    booked_now = await db.execute(
        select(ReservationDevice.device_pk, Reservation.end)
        .join(Reservation, Reservation.pk == ReservationDevice.reservation_pk)
        .where(
            Reservation.exclusive.is_(True),
            Reservation.project_pk != job.project_pk,
            Reservation.start <= now,
            Reservation.end > now,
        )
    )
    for pk, end in booked_now.all():
        if pk in facts and pk not in blocks:
            blocks[pk] = ("pending", f"booked exclusively by another project until {_at(end)}")
    return blocks
