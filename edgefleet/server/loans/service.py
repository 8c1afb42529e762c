"""Loans: lend, list, revoke, and the queries other resources ask of them
(which devices a project borrows, under which loan)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.db.base import new_id
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import Conflict, Invalid, NotFound
from edgefleet.server.loans.schemas import LoanIn, LoanOut, LoanRights
from edgefleet.server.loans.tables import DeviceLoan
from edgefleet.server.projects import service as projects
from edgefleet.server.projects.tables import Project

EVERYONE = "*"


async def guest_project(db: AsyncSession, ref: str, *, field: str = "project") -> Project | None:
    """The project a loan names (``None`` for everyone). Any project may be
    named, member or not: a lender needs no role in the guest project."""
    if ref == EVERYONE:
        return None
    found = await db.scalar(select(Project).where((Project.id == ref) | (Project.name == ref)))
    if found is None:
        raise Invalid(f"no project {ref!r}", field=field)
    return found


async def lend(db: AsyncSession, caller: Caller, device: Device, body: LoanIn) -> DeviceLoan:
    caller.require(device.project_pk, Permission.MANAGE_DEVICES, f"device {device.id!r}")
    guest = await guest_project(db, body.project)
    if guest is not None and guest.pk == device.project_pk:
        raise Invalid("a device cannot be lent to the project that owns it", field="project")
    key = guest.id if guest is not None else EVERYONE
    taken = await db.scalar(
        select(DeviceLoan.pk).where(DeviceLoan.device_pk == device.pk, DeviceLoan.guest == key)
    )
    if taken is not None:
        raise Conflict(
            f"device {device.name} is already lent to {body.project}; revoke it first",
            field="project",
        )
    loan = DeviceLoan(
        id=new_id("l"),
        device_pk=device.pk,
        project_pk=guest.pk if guest is not None else None,
        guest=key,
        rights=body.rights.model_dump(mode="json"),
        expose_labels=body.expose_labels,
        time_share=body.time_share,
        share_window_hours=body.share_window_hours,
        created_by=caller.name,
    )
    db.add(loan)
    await db.commit()
    return loan


async def loans_of(db: AsyncSession, device: Device) -> list[DeviceLoan]:
    rows = await db.scalars(
        select(DeviceLoan).where(DeviceLoan.device_pk == device.pk).order_by(DeviceLoan.pk)
    )
    return list(rows)


async def visible_loans(db: AsyncSession, caller: Caller, device: Device) -> list[LoanOut]:
    """The device's loans: its owners see them all, a guest only its own."""
    rows = await loans_of(db, device)
    if not caller.can(device.project_pk, Permission.READ):
        rows = [r for r in rows if r.project_pk is None or r.project_pk in caller.roles]
    return [await to_out(db, r, device) for r in rows]


async def revoke(db: AsyncSession, caller: Caller, device: Device, ref: str) -> DeviceLoan:
    """Removes the loan; the caller recomputes the device's desired state."""
    caller.require(device.project_pk, Permission.MANAGE_DEVICES, f"device {device.id!r}")
    key = EVERYONE
    if ref != EVERYONE:
        guest = await db.scalar(select(Project).where((Project.id == ref) | (Project.name == ref)))
        if guest is None:
            raise NotFound(f"device {device.name} is not lent to {ref!r}", field="project")
        key = guest.id
    loan = await db.scalar(
        select(DeviceLoan).where(DeviceLoan.device_pk == device.pk, DeviceLoan.guest == key)
    )
    if loan is None:
        raise NotFound(f"device {device.name} is not lent to {ref!r}", field="project")
    await db.execute(delete(DeviceLoan).where(DeviceLoan.pk == loan.pk))
    await db.commit()
    return loan


def guest_clause(project_pks: list[int] | None) -> ColumnElement[bool]:
    """Devices lent to any of these projects (``None``: an admin, who sees all anyway)."""
    if project_pks is None:
        return true()
    if not project_pks:
        return false()
    lent = select(DeviceLoan.device_pk).where(
        or_(DeviceLoan.project_pk.in_(project_pks), DeviceLoan.project_pk.is_(None))
    )
    return Device.pk.in_(lent)


async def loan_for(db: AsyncSession, device_pk: int, project_pk: int) -> DeviceLoan | None:
    """The loan under which ``project_pk`` holds a device: its own beats one to everyone."""
    rows = list(
        await db.scalars(
            select(DeviceLoan).where(
                DeviceLoan.device_pk == device_pk,
                or_(DeviceLoan.project_pk == project_pk, DeviceLoan.project_pk.is_(None)),
            )
        )
    )
    rows.sort(key=lambda loan: loan.project_pk is None)
    return rows[0] if rows else None


async def borrowed(db: AsyncSession, project_pk: int) -> dict[int, DeviceLoan]:
    """{device pk: loan} of every device lent to ``project_pk`` (or to everyone)
    that it does not own."""
    rows = await db.execute(
        select(DeviceLoan)
        .join(Device, Device.pk == DeviceLoan.device_pk)
        .where(
            or_(DeviceLoan.project_pk == project_pk, DeviceLoan.project_pk.is_(None)),
            Device.project_pk != project_pk,
        )
    )
    found: dict[int, DeviceLoan] = {}
    for (loan,) in rows.all():
        if loan.device_pk not in found or loan.project_pk is not None:
            found[loan.device_pk] = loan
    return found


async def to_out(db: AsyncSession, loan: DeviceLoan, device: Device) -> LoanOut:
    guest = (
        (await projects.names(db, {loan.project_pk}))[loan.project_pk]
        if loan.project_pk is not None
        else None
    )
    return LoanOut(
        id=loan.id,
        device=device.id,
        device_name=device.name,
        project=guest.name if guest is not None else EVERYONE,
        project_id=guest.id if guest is not None else None,
        rights=LoanRights.model_validate(loan.rights),
        expose_labels=list(loan.expose_labels),
        time_share=loan.time_share,
        share_window_hours=loan.share_window_hours,
        created_at=loan.created_at,
        created_by=loan.created_by,
    )


async def guest_loans(db: AsyncSession, device_pk: int, project_pks: list[int]) -> list[DeviceLoan]:
    """The device's loans to any of these projects (or to everyone), own ones first."""
    rows = list(
        await db.scalars(
            select(DeviceLoan).where(
                DeviceLoan.device_pk == device_pk,
                or_(DeviceLoan.project_pk.in_(project_pks), DeviceLoan.project_pk.is_(None)),
            )
        )
    )
    rows.sort(key=lambda loan: (loan.project_pk is None, loan.pk))
    return rows
