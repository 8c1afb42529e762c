"""What each agent last applied, and whether its runtime is healthy, written
in groups.

An agent reports its applied generation in every heartbeat and after each
change it applies; the device row keeps it (``applied_generation``,
``runtime_healthy``) for the API. After a fan-out every agent applies at
once: a transaction per report put 1,000 one-row UPDATEs in line for
SQLite's one writer, each holding a pool connection while it waited, and API
reads found none free for up to 1.4 s (issue 16). Reports that come together
are written together (:class:`~edgefleet.server.gateway.grouped.Grouped`): one
statement, executed for each device in primary-key order, in one transaction.
Each caller still returns once its row is committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.db.group import PerDatabase
from edgefleet.server.devices.tables import Device
from edgefleet.server.gateway.grouped import Grouped

Sessions = async_sessionmaker[AsyncSession]

MAX_GROUP = 1000


@dataclass(frozen=True, slots=True)
class Applied:
    device_pk: int
    generation: int
    healthy: bool


async def note(sessions: Sessions, device_pk: int, generation: int, healthy: bool) -> None:
    """Store what the device's agent applied; returns once committed, with the
    other reports of the moment. Raises what that transaction raised."""
    await _writers.of(sessions)(Applied(device_pk, generation, healthy))


async def _write(sessions: Sessions, reports: list[Applied]) -> list[None]:
    latest = {r.device_pk: r for r in reports}  # in report order: the last one stands
    # Rows in pk order: on PostgreSQL, writers of the same device rows in
    # another order could deadlock with this one. A Core statement, not the
    # ORM's bulk update by primary key: a device deleted while its agent was
    # connected matches no row, which the ORM raises for, failing the group.
    rows = [
        {"device": pk, "generation": r.generation, "healthy": r.healthy}
        for pk, r in sorted(latest.items())
    ]
    async with sessions() as db:
        await db.execute(_UPDATE, rows)
        await db.commit()
    return [None] * len(reports)


_DEVICES = cast(Table, Device.__table__)
_UPDATE = (
    update(_DEVICES)
    .where(_DEVICES.c.pk == bindparam("device"))
    .values(applied_generation=bindparam("generation"), runtime_healthy=bindparam("healthy"))
)
_writers = PerDatabase(
    lambda sessions: Grouped(partial(_write, sessions), max_group=MAX_GROUP, name="applied")
)
