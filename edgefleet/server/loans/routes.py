"""``/devices/{id}/loans``: lend, list, revoke. Revoking re-applies the guest's
jobs on the device at once, so their workloads stop (desired state pushed)
with "loan revoked" in their device state."""

from __future__ import annotations

from fastapi import APIRouter

from edgefleet.server.deps import CallerDep, Ctx, Db
from edgefleet.server.devices import service as devices
from edgefleet.server.loans import changes, service
from edgefleet.server.loans.schemas import LoanIn, LoanOut
from edgefleet.server.pagination import Page

router = APIRouter(tags=["loans"])


@router.post("/devices/{device}/loans", status_code=201, response_model=LoanOut)
async def lend_device(device: str, body: LoanIn, caller: CallerDep, db: Db, ctx: Ctx) -> LoanOut:
    """Lend a device to another project (``"*"``: every project), with limits."""
    return await changes.lend(ctx, db, caller, device, body)


@router.get("/devices/{device}/loans", response_model=Page[LoanOut])
async def list_loans(device: str, caller: CallerDep, db: Db) -> Page[LoanOut]:
    """The device's loans: its owners see them all, a guest only its own."""
    found, _ = await devices.find(db, caller, device)
    return Page(items=await service.visible_loans(db, caller, found))


@router.delete("/devices/{device}/loans/{project}", status_code=204)
async def revoke_loan(device: str, project: str, caller: CallerDep, db: Db, ctx: Ctx) -> None:
    """Revoke: the guest's workloads on the device stop, with the reason in their status."""
    await changes.revoke(ctx, db, caller, device, project)
