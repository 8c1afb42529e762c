"""Agents' arrivals written in groups: presence and the hello's device columns.

Every connection marks its device online (a presence row) and stores what its
hello changed (facts, applied generation, last seen). Written one transaction
per connection, a reconnect storm of a thousand agents queues a thousand
commits behind SQLite's single writer, each waiting on the others' locks.
Here the arrivals that come in while a group is being written go into the
next group: one transaction, one commit, three statements (the device rows
updated by primary key in one executemany), and each caller learns whether its
device was already online (for the ``device.connected`` event) and its desired
generation, read in that transaction: the hub has already made the session the
device's connection, so a change committed later is pushed to it and one
committed earlier shows here. Read in its own query per connection, that
generation was a third of a handshake's database round trips (issue 16).

If a group fails, each of its arrivals is written again alone, so one bad
row cannot keep the others offline.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from edgefleet.server.context import ServerContext
from edgefleet.server.db.among import among
from edgefleet.server.db.base import utcnow
from edgefleet.server.db.upsert import insert_for
from edgefleet.server.devices.tables import Device, Presence

MAX_GROUP = 256


@dataclass(frozen=True, slots=True)
class Arrived:
    was_online: bool
    """online already (on any replica) before this arrival"""
    desired_generation: int
    """the device's desired generation, read after it was marked online"""


@dataclass
class Arrival:
    device_pk: int
    changes: dict[str, Any]
    done: asyncio.Future[Arrived] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Arrivals:
    def __init__(self, ctx: ServerContext, ttl: float) -> None:
        self.ctx = ctx
        self.ttl = ttl
        self._queue: list[Arrival] = []
        self._writer: asyncio.Task[None] | None = None

    async def arrive(self, device_pk: int, changes: dict[str, Any]) -> Arrived:
        """Mark the device online on this replica and store ``changes`` on its
        row; returns whether it was online already and its desired generation."""
        arrival = Arrival(device_pk, changes)
        self._queue.append(arrival)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="arrivals")
        return await arrival.done

    async def _drain(self) -> None:
        while self._queue:
            group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            try:
                await self._write(group)
            except SQLAlchemyError as exc:
                if len(group) == 1:
                    group[0].done.set_exception(exc)
                    continue
                for arrival in group:  # one by one, so one bad row fails only itself
                    try:
                        await self._write([arrival])
                    except SQLAlchemyError as alone:
                        arrival.done.set_exception(alone)

    async def _write(self, group: list[Arrival]) -> None:
        now = utcnow()
        pks = [a.device_pk for a in group]
        async with self.ctx.session() as db:
            online = set(
                await db.scalars(
                    select(Presence.device_pk).where(
                        among(db, Presence.device_pk, pks), Presence.expires_at > now
                    )
                )
            )
            # Rows as executemany parameters, not a VALUES list: one statement
            # text whatever the group's size (SQLAlchemy compiled a VALUES list
            # of each new length again, and psycopg parsed it again).
            stmt = insert_for(db, Presence)
            await db.execute(
                stmt.on_conflict_do_update(
                    index_elements=[Presence.device_pk],
                    set_={
                        "replica": stmt.excluded.replica,
                        "connected_at": stmt.excluded.connected_at,
                        "expires_at": stmt.excluded.expires_at,
                    },
                ),
                [self._presence(pk, now) for pk in dict.fromkeys(pks)],
            )
            # By primary key, rows with the same columns in one executemany: a
            # statement per arrival was a database round trip each.
            await db.execute(
                update(Device),
                [{"pk": a.device_pk, "last_seen": now, **a.changes} for a in group],
            )
            generations: dict[int, int] = {
                pk: generation
                for pk, generation in await db.execute(
                    select(Device.pk, Device.desired_generation).where(among(db, Device.pk, pks))
                )
            }
            await db.commit()
        for arrival in group:
            if not arrival.done.done():
                arrival.done.set_result(
                    Arrived(
                        was_online=arrival.device_pk in online,
                        desired_generation=generations.get(arrival.device_pk, 0),
                    )
                )

    def _presence(self, pk: int, now: datetime) -> dict[str, Any]:
        return {
            "device_pk": pk,
            "replica": self.ctx.replica,
            "connected_at": now,
            "expires_at": now + timedelta(seconds=self.ttl),
        }
