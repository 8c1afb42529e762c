"""A loan made or revoked, with what follows: its event, and the guest's jobs
re-evaluated (a new loan may let its selector jobs reach the device; a revoked
one stops them at once, "loan revoked" in their device state). The API and
the portal both call these."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.context import ServerContext
from edgefleet.server.devices import service as devices
from edgefleet.server.loans import service
from edgefleet.server.loans.schemas import LoanIn, LoanOut
from edgefleet.server.reservations import effects


async def lend(
    ctx: ServerContext, db: AsyncSession, caller: Caller, device: str, body: LoanIn
) -> LoanOut:
    found, _ = await devices.find(db, caller, device)
    loan = await service.lend(db, caller, found, body)
    out = await service.to_out(db, loan, found)
    ctx.events.record(
        "device.lent",
        found.project_pk,
        f"device {found.name} lent to {out.project} by {caller.name}",
        device_id=found.id,
        actor=caller.name,
        data=body.model_dump(mode="json"),
    )
    await effects.loans_changed(ctx, loan.project_pk)
    return out


async def revoke(
    ctx: ServerContext, db: AsyncSession, caller: Caller, device: str, project: str
) -> None:
    found, _ = await devices.find(db, caller, device)
    loan = await service.revoke(db, caller, found, project)
    ctx.events.record(
        "device.loan_revoked",
        found.project_pk,
        f"loan of device {found.name} to {project} revoked by {caller.name}",
        device_id=found.id,
        actor=caller.name,
    )
    await effects.reapply_devices(ctx, db, [found.pk], loan.project_pk)
