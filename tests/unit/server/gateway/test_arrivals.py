"""Arrivals written in groups on a real SQLite file: agents arriving together
each get their own hello's columns on their own row (the rows are updated by
primary key in one executemany, with differing columns per agent), a presence
row on this replica, the answer whether they were online already, and their
desired generation read in the same transaction."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, update

from edgefleet.server.context import ServerContext
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.gateway.arrivals import Arrivals
from tests.support.device_rows import add_devices


async def _devices(ctx: ServerContext, count: int) -> list[int]:
    async with ctx.session() as db:
        devices = await add_devices(db, count)
        await db.commit()
        return [d.pk for d in devices]


async def test_agents_arriving_together_each_get_their_own_columns(ctx: ServerContext) -> None:
    pks = await _devices(ctx, 4)
    async with ctx.session() as db:
        await db.execute(update(Device).where(Device.pk == pks[1]).values(desired_generation=9))
        await db.commit()
    arrivals = Arrivals(ctx, ttl=30)
    changes: list[dict[str, object]] = [
        {"applied_generation": 3, "runtime_healthy": True},
        {"applied_generation": 5, "runtime_healthy": False, "agent_version": "2.0"},
        {"applied_generation": 7, "runtime_healthy": True, "facts": {"agent_version": "x"}},
        {},
    ]
    first = await asyncio.gather(
        *(arrivals.arrive(pk, change) for pk, change in zip(pks, changes, strict=True))
    )
    assert [a.was_online for a in first] == [False] * 4
    assert [a.desired_generation for a in first] == [0, 9, 0, 0]
    again = await asyncio.gather(arrivals.arrive(pks[0], {}), arrivals.arrive(pks[1], {}))
    # online already: no second device.connected
    assert [a.was_online for a in again] == [True, True]
    assert [a.desired_generation for a in again] == [0, 9]

    async with ctx.session() as db:
        rows = {d.pk: d for d in await db.scalars(select(Device))}
        present = {p.device_pk: p.replica for p in await db.scalars(select(Presence))}
    assert [rows[pk].applied_generation for pk in pks] == [3, 5, 7, 0]
    assert [rows[pk].runtime_healthy for pk in pks] == [True, False, True, True]
    assert [rows[pk].agent_version for pk in pks] == ["", "2.0", "", ""]
    assert rows[pks[2]].facts == {"agent_version": "x"}
    assert all(rows[pk].last_seen is not None for pk in pks)
    assert present == dict.fromkeys(pks, "here")
