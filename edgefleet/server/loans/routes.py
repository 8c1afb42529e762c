"""``/devices/{id}/loans``: lend, list, revoke. Revoking re-applies the guest's
jobs on the device at once, so their workloads stop (desired state pushed)
with "loan revoked" in their device state."""

from __future__ import annotations

from fastapi import APIRouter

from edgefleet.server.auth.roles import Permission
from edgefleet.server.deps import CallerDep, Ctx, Db
from edgefleet.server.devices import service as devices
from edgefleet.server.loans import service
from edgefleet.server.loans.schemas import LoanIn, LoanOut
from edgefleet.server.pagination import Page
from edgefleet.server.reservations import effects

router = APIRouter(tags=["loans"])


@router.post("/devices/{device}/loans", status_code=201, response_model=LoanOut)
async def lend_device(device: str, body: LoanIn, caller: CallerDep, db: Db, ctx: Ctx) -> LoanOut:
    """Lend a device to another project (``"*"``: every project), with limits."""
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


@router.get("/devices/{device}/loans", response_model=Page[LoanOut])
async def list_loans(device: str, caller: CallerDep, db: Db) -> Page[LoanOut]:
    """The device's loans: its owners see them all, a guest only its own."""
    found, _ = await devices.find(db, caller, device)
    rows = await service.loans_of(db, found)
    if not caller.can(found.project_pk, Permission.READ):
        rows = [r for r in rows if r.project_pk is None or r.project_pk in caller.roles]
    return Page(items=[await service.to_out(db, r, found) for r in rows])


@router.delete("/devices/{device}/loans/{project}", status_code=204)
async def revoke_loan(device: str, project: str, caller: CallerDep, db: Db, ctx: Ctx) -> None:
    """Revoke: the guest's workloads on the device stop, with the reason in their status."""
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
