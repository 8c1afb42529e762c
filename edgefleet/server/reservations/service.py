"""Reservations: plan, book, list, change, cancel. The choosing is pure
(:mod:`.booking`); this module gathers its facts and stores its answer.

Bookings are planned and written under one lock per server process, so two
requests on one server cannot both take the last free device; with several
replicas a double booking between them is possible (see docs/SECURITY.md).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.labels import parse_selector
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.devices import query as device_query
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.errors import Conflict, Invalid, NotFound
from edgefleet.server.jobs.tables import Job
from edgefleet.server.loans import service as loans
from edgefleet.server.loans.view import exposed
from edgefleet.server.pagination import Page, PageParams, keyset_page
from edgefleet.server.projects import service as projects
from edgefleet.server.projects.tables import Project
from edgefleet.server.readiness import check
from edgefleet.server.readiness import service as readiness
from edgefleet.server.reservations import booking
from edgefleet.server.reservations.schemas import (
    ConflictOut,
    DryRunOut,
    ReservationIn,
    ReservationOut,
    ReservationPatch,
)
from edgefleet.server.reservations.tables import Reservation, ReservationDevice, ReservationJob
from edgefleet.wire.messages import DeviceFacts

LOCK = asyncio.Lock()
LOOKBACK = timedelta(days=367)  # the longest share window a loan can have, and a day


@dataclass
class Refused(Exception):
    """The booking conflicts; routes answer 409 with ``conflicts``."""

    plan: booking.Plan


async def _pool(
    db: AsyncSession, caller: Caller, project: Project, body: ReservationIn | None, pks: list[int]
) -> dict[int, Device]:
    """The devices a booking considers: by ref (any the caller can see), by
    selector (the project's own, and lent ones by their exposed labels), or
    by pk (an existing reservation's devices)."""
    if body is None:
        rows = await db.scalars(select(Device).where(Device.pk.in_(pks)))
        return {d.pk: d for d in rows}
    lent = await loans.borrowed(db, project.pk)
    if body.devices is not None:
        refs = body.devices
        query = device_query.visible_or_lent(
            select(Device).where(or_(Device.id.in_(refs), Device.name.in_(refs))), caller
        )
        found = list(await db.scalars(query))
        by_ref: dict[str, Device] = {}
        for device in found:
            by_ref[device.id] = device
            if device.name in by_ref and by_ref[device.name].pk != device.pk:
                if device.project_pk == project.pk or device.pk in lent:
                    by_ref[device.name] = device
            else:
                by_ref.setdefault(device.name, device)
        missing = [r for r in refs if r not in by_ref]
        if missing:
            raise Invalid(
                f"devices: no device {', '.join(repr(m) for m in missing)}", field="devices"
            )
        return {by_ref[r].pk: by_ref[r] for r in refs}
    selector = parse_selector(str(body.selector or ""))
    own = await db.scalars(
        select(Device).where(
            Device.project_pk == project.pk, device_query.selector_clause(selector)
        )
    )
    pool = {d.pk: d for d in own}
    for device in await db.scalars(select(Device).where(Device.pk.in_(list(lent)))):
        if selector.matches(exposed(device.labels or {}, lent[device.pk].expose_labels)):
            pool[device.pk] = device
    return pool


async def _candidates(
    db: AsyncSession, project: Project, pool: dict[int, Device], since: datetime
) -> list[booking.Candidate]:
    pks = list(pool)
    now = utcnow()
    online = set(
        await db.scalars(
            select(Presence.device_pk).where(Presence.device_pk.in_(pks), Presence.expires_at > now)
        )
    )
    bookings: dict[int, list[booking.Booking]] = {pk: [] for pk in pks}
    rows = await db.execute(
        select(ReservationDevice.device_pk, Reservation)
        .join(Reservation, Reservation.pk == ReservationDevice.reservation_pk)
        .where(ReservationDevice.device_pk.in_(pks), Reservation.end > since)
    )
    for pk, found in rows.all():
        bookings[pk].append(
            booking.Booking(found.id, found.project_pk, found.start, found.end, found.exclusive)
        )
    lent = await loans.borrowed(db, project.pk)
    rules = await readiness.rules(db, {d.project_pk for d in pool.values()})
    result = []
    for pk, device in pool.items():
        loan = lent.get(pk)
        owned = device.project_pk == project.pk
        missing = check.missing(
            rules.get(device.project_pk, []),
            device.labels or {},
            DeviceFacts.model_validate(device.facts or {}).peripherals,
        )
        share = None
        if loan is not None and not owned:
            share = booking.Share(loan.time_share, timedelta(hours=loan.share_window_hours))
        result.append(
            booking.Candidate(
                id=device.id,
                name=device.name,
                labels=device.labels or {}
                if owned or loan is None
                else exposed(device.labels or {}, loan.expose_labels),
                online=pk in online,
                ready_problem=missing,
                lent=owned or loan is not None,
                share=share,
                bookings=tuple(bookings[pk]),
            )
        )
    return result


def _conflicts(items: list[tuple[str, str]]) -> list[ConflictOut]:
    return [ConflictOut(device=d, reason=r) for d, r in items]


def dry_run_out(plan: booking.Plan) -> DryRunOut:
    return DryRunOut(
        devices=plan.devices,
        conflicts=_conflicts(plan.conflicts),
        skipped=_conflicts(plan.skipped),
    )


async def create(
    db: AsyncSession, caller: Caller, body: ReservationIn, max_days: float, max_devices: int
) -> Reservation | booking.Plan:
    """A stored reservation, or (``dry_run``) the plan. Raises :class:`Refused`."""
    project = await projects.find(db, caller, body.project)
    caller.require(project.pk, Permission.MANAGE_APPS, f"project {project.name!r}")
    if body.end - body.start > timedelta(days=max_days):
        raise Invalid(f"a reservation may last at most {max_days:g} days", field="end")
    most = f"at most {max_devices} devices per reservation (--reservation-max-devices)"
    if body.devices is not None and len(body.devices) > max_devices:
        raise Invalid(most, field="devices")
    if body.count is not None and body.count > max_devices:
        raise Invalid(most, field="count")
    async with LOCK:
        pool = await _pool(db, caller, project, body, [])
        candidates = await _candidates(db, project, pool, body.start - LOOKBACK)
        request = booking.Request(
            project.pk, body.start, body.end, body.exclusive, body.count, body.spread
        )
        plan = booking.plan(candidates, request)
        if len(plan.devices) > max_devices:
            raise Invalid(
                f"the selector matches {len(plan.devices)}: give a count; {most}", field="selector"
            )
        if body.dry_run:
            return plan
        if not plan.ok:
            raise Refused(plan)
        reservation = Reservation(
            id=new_id("r"),
            project_pk=project.pk,
            start=body.start,
            end=body.end,
            exclusive=body.exclusive,
            selector=body.selector if isinstance(body.selector, str) else None,
            count=body.count,
            spread=body.spread,
            created_by=caller.name,
        )
        db.add(reservation)
        await db.flush()
        by_id = {d.id: pk for pk, d in pool.items()}
        db.add_all(
            ReservationDevice(reservation_pk=reservation.pk, device_pk=by_id[d])
            for d in plan.devices
        )
        await db.commit()
    return reservation


async def find(db: AsyncSession, caller: Caller, ref: str) -> Reservation:
    found = await db.scalar(select(Reservation).where(Reservation.id == ref))
    if found is None or not caller.can(found.project_pk, Permission.READ):
        raise NotFound(f"reservation {ref!r} not found")
    return found


async def device_pks(db: AsyncSession, reservation: Reservation) -> list[int]:
    rows = await db.scalars(
        select(ReservationDevice.device_pk).where(
            ReservationDevice.reservation_pk == reservation.pk
        )
    )
    return list(rows)


async def change(
    db: AsyncSession,
    caller: Caller,
    reservation: Reservation,
    body: ReservationPatch,
    max_days: float,
) -> Reservation:
    """Extend or shorten, checking its devices' conflicts again for the new window."""
    caller.require(
        reservation.project_pk, Permission.MANAGE_APPS, f"reservation {reservation.id!r}"
    )
    start = body.start or reservation.start
    end = body.end or reservation.end
    if end <= start:
        raise Invalid("'end' must be after 'start'", field="end")
    if end <= utcnow():
        raise Invalid("'end' is in the past: cancel the reservation instead", field="end")
    if end - start > timedelta(days=max_days):
        raise Invalid(f"a reservation may last at most {max_days:g} days", field="end")
    project = (await projects.names(db, {reservation.project_pk}))[reservation.project_pk]
    async with LOCK:
        pool = await _pool(db, caller, project, None, await device_pks(db, reservation))
        candidates = await _candidates(db, project, pool, start - LOOKBACK)
        request = booking.Request(
            project.pk, start, end, reservation.exclusive, ignore=reservation.id
        )
        plan = booking.plan(candidates, request)
        # the devices are already held: being offline now does not undo that
        plan.conflicts = [(d, r) for d, r in plan.conflicts if r != "offline"]
        if not plan.ok:
            raise Refused(plan)
        reservation.start, reservation.end = start, end
        await db.commit()
    return reservation


async def cancel(db: AsyncSession, caller: Caller, reservation: Reservation) -> list[int]:
    """Deletes it and ends the jobs that named it; returns its device pks (their
    jobs are re-applied)."""
    caller.require(
        reservation.project_pk, Permission.MANAGE_APPS, f"reservation {reservation.id!r}"
    )
    pks = await device_pks(db, reservation)
    # its jobs end with it (the scheduler marks them expired): they ran only inside it
    linked = select(ReservationJob.job_pk).where(ReservationJob.reservation_pk == reservation.pk)
    now = utcnow()
    await db.execute(
        update(Job).where(Job.pk.in_(linked), or_(Job.end.is_(None), Job.end > now)).values(end=now)
    )
    await db.execute(delete(Reservation).where(Reservation.pk == reservation.pk))
    await db.commit()
    return pks


async def listing(
    db: AsyncSession,
    caller: Caller,
    page: PageParams,
    *,
    project_pk: int | None = None,
    device_pk: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[Reservation]:
    """The caller's projects' reservations (holding ``device_pk``, overlapping
    ``since``..``until``), oldest first."""
    query = select(Reservation)
    query = projects.in_visible(query, Reservation.project_pk, caller)
    if project_pk is not None:
        query = query.where(Reservation.project_pk == project_pk)
    if device_pk is not None:
        held = select(ReservationDevice.reservation_pk).where(
            ReservationDevice.device_pk == device_pk
        )
        query = query.where(Reservation.pk.in_(held))
    if since is not None:
        query = query.where(Reservation.end > since)
    if until is not None:
        query = query.where(Reservation.start < until)
    return await keyset_page(db, query, Reservation.pk, page)


async def outputs(db: AsyncSession, rows: list[Reservation]) -> list[ReservationOut]:
    names = await projects.names(db, {r.project_pk for r in rows})
    devices: dict[int, list[tuple[str, str]]] = {r.pk: [] for r in rows}
    found = await db.execute(
        select(ReservationDevice.reservation_pk, Device.id, Device.name)
        .join(Device, Device.pk == ReservationDevice.device_pk)
        .where(ReservationDevice.reservation_pk.in_(list(devices)))
        .order_by(Device.name)
    )
    for reservation_pk, device_id, name in found.all():
        devices[reservation_pk].append((device_id, name))
    now = utcnow()
    return [
        ReservationOut(
            id=r.id,
            project=names[r.project_pk].name,
            project_id=names[r.project_pk].id,
            devices=[d for d, _ in devices[r.pk]],
            device_names=[n for _, n in devices[r.pk]],
            selector=r.selector,
            count=r.count,
            spread=r.spread,
            start=r.start,
            end=r.end,
            exclusive=r.exclusive,
            state="upcoming" if now < r.start else "active" if now < r.end else "ended",
            created_by=r.created_by,
            created_at=r.created_at,
        )
        for r in rows
    ]


def conflict_error(plan: booking.Plan) -> Conflict:
    """The 409 a refused booking answers, carrying the same ``conflicts`` a dry run shows."""
    conflicts = [c.model_dump() for c in _conflicts(plan.conflicts)]
    summary = "; ".join(f"{c['device'] or 'booking'}: {c['reason']}" for c in conflicts[:5])
    return Conflict(f"the reservation conflicts: {summary}", field="devices", conflicts=conflicts)
