"""A reservation booked, changed or cancelled, with what follows: its event,
and the jobs on its devices re-applied (:mod:`.effects`), so a window that
opens or closes moves workloads at once. The API and the portal both call
these, so they follow the same rules."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.context import ServerContext
from edgefleet.server.reservations import effects, service
from edgefleet.server.reservations.booking import Plan
from edgefleet.server.reservations.schemas import ReservationIn, ReservationPatch
from edgefleet.server.reservations.tables import Reservation


async def book(
    ctx: ServerContext, db: AsyncSession, caller: Caller, body: ReservationIn
) -> Reservation | Plan:
    """The stored reservation, or (``dry_run``) the plan; a conflict is a 409 that
    names the devices and windows in the way."""
    try:
        made = await service.create(
            db,
            caller,
            body,
            ctx.settings.reservation_max_days,
            ctx.settings.reservation_max_devices,
        )
    except service.Refused as refused:
        raise service.conflict_error(refused.plan) from None
    if isinstance(made, Plan):
        return made
    ctx.events.record(
        "reservation.created",
        made.project_pk,
        f"reservation {made.id} made by {caller.name}",
        actor=caller.name,
    )
    await effects.reapply_devices(ctx, db, await service.device_pks(db, made))
    return made


async def change(
    ctx: ServerContext, db: AsyncSession, caller: Caller, ref: str, body: ReservationPatch
) -> Reservation:
    """Extend or shorten (409 with ``conflicts`` if the new window collides)."""
    found = await service.find(db, caller, ref)
    try:
        changed = await service.change(db, caller, found, body, ctx.settings.reservation_max_days)
    except service.Refused as refused:
        raise service.conflict_error(refused.plan) from None
    ctx.events.record(
        "reservation.changed",
        changed.project_pk,
        f"reservation {changed.id} now {changed.start.isoformat()} to {changed.end.isoformat()}",
        actor=caller.name,
    )
    await effects.reapply_devices(
        ctx, db, await service.device_pks(db, changed), reservation_pks=[changed.pk]
    )
    return changed


async def cancel(ctx: ServerContext, db: AsyncSession, caller: Caller, ref: str) -> None:
    """Its jobs stop on its devices; others' jobs may land there again."""
    found = await service.find(db, caller, ref)
    project_pk, reservation_id = found.project_pk, found.id
    pks = await service.cancel(db, caller, found)
    ctx.events.record(
        "reservation.cancelled",
        project_pk,
        f"reservation {reservation_id} cancelled by {caller.name}",
        actor=caller.name,
    )
    await effects.reapply_devices(ctx, db, pks)
