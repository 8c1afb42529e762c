"""Devices as users see them: list, show, change, delete."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.labels import Selector
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import utcnow
from edgefleet.server.devices import query as q
from edgefleet.server.devices.schemas import DeviceOut, DevicePatch
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.errors import Conflict, NotFound
from edgefleet.server.jobs import desired
from edgefleet.server.loans import service as loans
from edgefleet.server.loans.view import guest_view
from edgefleet.server.pagination import Page, PageParams, keyset_rows
from edgefleet.server.projects import service as projects
from edgefleet.server.readiness import check
from edgefleet.server.readiness import service as readiness
from edgefleet.wire.messages import DeviceFacts


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396: ``null`` removes, objects merge recursively, anything else replaces."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = value
    return result


def _not_ready(device: Device, online: bool, missing: str | None) -> str | None:
    """Why a device is not ready, in plain words (``None`` when it is)."""
    if not online:
        return "offline"
    if not device.runtime_healthy:
        return "its runtime is not healthy"
    if missing:
        return missing
    if device.applied_generation < device.desired_generation:
        return "still applying its latest desired state"
    return None


def to_out(
    device: Device,
    presence: Presence | None,
    project_name: str,
    project_id: str,
    missing: str | None = None,
) -> DeviceOut:
    """``missing``: a peripheral its project declares and it lacks (:mod:`..readiness`)."""
    facts = DeviceFacts.model_validate(device.facts or {})
    online = presence is not None and presence.expires_at > utcnow()
    reason = _not_ready(device, online, missing)
    return DeviceOut(
        id=device.id,
        name=device.name,
        project=project_name,
        project_id=project_id,
        labels=device.labels,
        metadata=device.meta,
        peripherals=facts.peripherals,
        resources=facts.resources,
        runtimes=facts.runtimes,
        policy=facts.policy,
        agent_version=device.agent_version,
        agent_upgrade=facts.upgrade,
        is_online=online,
        is_ready=reason is None,
        not_ready_reason=reason,
        last_seen=device.last_seen,
        created_at=device.created_at,
        desired_generation=device.desired_generation,
        applied_generation=device.applied_generation,
        replica=presence.replica if online and presence else None,
        local_apps=facts.local_apps,
    )


async def outputs(
    db: AsyncSession, rows: list[tuple[Device, Presence | None]], caller: Caller | None = None
) -> list[DeviceOut]:
    """The devices as ``caller`` may see them: a device lent to one of the
    caller's projects (not owned by one) comes in the guest's narrow view
    (:func:`edgefleet.server.loans.view.guest_view`). Without a caller: the
    owner's full view, for callers that have already checked membership."""
    names = await projects.names(db, {d.project_pk for d, _ in rows})
    rules = await readiness.rules(db, {d.project_pk for d, _ in rows})
    result = []
    for d, p in rows:
        missing = check.missing(
            rules.get(d.project_pk, []),
            d.labels or {},
            DeviceFacts.model_validate(d.facts or {}).peripherals,
        )
        out = to_out(d, p, names[d.project_pk].name, names[d.project_pk].id, missing)
        if (
            caller is not None
            and caller.visible_projects() is not None
            and d.project_pk not in caller.roles
        ):
            out = guest_view(out, await loans.guest_loans(db, d.pk, list(caller.roles)))
        result.append(out)
    return result


async def list_devices(
    db: AsyncSession,
    caller: Caller,
    page: PageParams,
    *,
    selector: Selector | None = None,
    online: bool | None = None,
    project_pk: int | None = None,
) -> Page[tuple[Device, Presence | None]]:
    """The devices the caller sees (its projects' and those lent to it), oldest
    first, each with its presence row."""
    query = q.visible_or_lent(q.with_presence(), caller)
    if selector is not None:
        query = query.where(q.selector_clause(selector))
    if project_pk is not None:
        query = query.where(Device.project_pk == project_pk)
    if online is not None:
        clause = q.online_clause(utcnow())
        query = query.where(clause if online else ~clause)
    return await keyset_rows(db, query, Device.pk, page, key=lambda row: int(row[0].pk))


async def find(db: AsyncSession, caller: Caller, ref: str) -> tuple[Device, Presence | None]:
    """By id, or by name among the devices the caller can see (its projects'
    and those lent to them: every change or command on a device still needs a
    role in the owning project, so a guest gets 404 there)."""
    by_id = (
        await db.execute(q.visible_or_lent(q.with_presence(), caller).where(Device.id == ref))
    ).first()
    if by_id is not None:
        return by_id[0], by_id[1]
    by_name = (
        await db.execute(
            q.visible_or_lent(q.with_presence(), caller).where(Device.name == ref).limit(2)
        )
    ).all()
    if not by_name:
        raise NotFound(f"device {ref!r} not found")
    if len(by_name) > 1:
        raise Conflict(f"device name {ref!r} is used in several projects; use the device id")
    return by_name[0][0], by_name[0][1]


async def patch(db: AsyncSession, caller: Caller, device: Device, body: DevicePatch) -> Device:
    caller.require(device.project_pk, Permission.MANAGE_DEVICES, f"device {device.id!r}")
    if body.name is not None and body.name != device.name:
        taken = await db.scalar(
            select(Device.pk).where(
                Device.project_pk == device.project_pk, Device.name == body.name
            )
        )
        if taken is not None:
            raise Conflict(f"another device in this project is named {body.name!r}", field="name")
        device.name = body.name
    if body.labels is not None:
        device.labels = merge_patch(device.labels, body.labels)
    if body.metadata is not None:
        device.meta = merge_patch(device.meta, body.metadata)
    await db.commit()
    return device


async def patch_from(
    ctx: ServerContext, db: AsyncSession, caller: Caller, ref: str, body: DevicePatch
) -> DeviceOut:
    """``PATCH /devices/{device}``: the change, its event; a fleet change when the
    labels moved (selectors re-match), new desired states when what workloads
    see of the device (name, labels, metadata) changed."""
    found, presence = await find(db, caller, ref)
    before = dict(found.labels)
    described = (found.name, before, copy.deepcopy(found.meta))
    updated = await patch(db, caller, found, body)
    ctx.events.record(
        "device.updated",
        updated.project_pk,
        f"device {updated.name} updated by {caller.name}",
        device_id=updated.id,
        actor=caller.name,
        data=body.model_dump(exclude_none=True),
    )
    if updated.labels != before:
        await ctx.hub.fleet_changed(updated.project_pk)
    if (updated.name, updated.labels, updated.meta) != described:
        await desired.device_changed(ctx, db, updated.pk)
    return (await outputs(db, [(updated, presence)], caller))[0]


async def delete_by(ctx: ServerContext, db: AsyncSession, caller: Caller, ref: str) -> None:
    """``DELETE /devices/{device}``: the rows, then the device's connection is cut
    (its credential no longer exists) and the fleet told."""
    found, _ = await find(db, caller, ref)
    device_id, name, project_pk = found.id, found.name, found.project_pk
    await delete_device(db, caller, found)
    await ctx.hub.kick(
        device_id,
        f"device {name} ({device_id}) was deleted by {caller.name}; its credential is revoked",
    )
    ctx.events.record(
        "device.deleted",
        project_pk,
        f"device {name} deleted",
        device_id=device_id,
        actor=caller.name,
    )
    await ctx.hub.fleet_changed(project_pk)


async def delete_device(db: AsyncSession, caller: Caller, device: Device) -> None:
    caller.require(device.project_pk, Permission.MANAGE_DEVICES, f"device {device.id!r}")
    await db.execute(delete(Presence).where(Presence.device_pk == device.pk))
    await db.delete(device)
    await db.commit()


async def count_status(db: AsyncSession, caller: Caller) -> dict[str, int]:
    """How many devices the caller sees are online, ready and offline, in one
    query (the portal's dashboard asks on every fleet change)."""
    online = q.online_clause(utcnow())
    ready = and_(
        online,
        Device.runtime_healthy.is_(True),
        Device.applied_generation >= Device.desired_generation,
    )
    query = q.visible(
        select(func.count(Device.pk), func.count(case((online, 1))), func.count(case((ready, 1))))
        .select_from(Device)
        .outerjoin(Presence, Presence.device_pk == Device.pk),
        caller,
    )
    total, on, rdy = (await db.execute(query)).one()
    rdy -= await _lacking(db, caller, ready)
    return {"total": total, "online": on, "ready": rdy, "offline": total - on}


async def _lacking(db: AsyncSession, caller: Caller, ready: ColumnElement[bool]) -> int:
    """Of the devices ready by the SQL test, how many miss a declared peripheral
    (only projects that declare any are read, so most fleets pay one query)."""
    visible = caller.visible_projects()
    declared = await readiness.rules(db, set(visible) if visible is not None else None)
    if not declared:
        return 0
    rows = await db.execute(
        select(Device.project_pk, Device.labels, Device.facts)
        .outerjoin(Presence, Presence.device_pk == Device.pk)
        .where(ready, Device.project_pk.in_(list(declared)))
    )
    return sum(
        1
        for project_pk, labels, facts in rows.all()
        if check.missing(
            declared[project_pk],
            labels or {},
            DeviceFacts.model_validate(facts or {}).peripherals,
        )
    )
