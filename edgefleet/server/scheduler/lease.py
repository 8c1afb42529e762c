"""Leases: background work that must run on exactly one replica.

A row per lease in the shared database; a replica holds it while it keeps
renewing it (:class:`Holding`: once a third of its TTL has passed) and loses it ``ttl`` seconds after it
stops (it died, or lost the database). Acquiring is one conditional UPDATE
("mine already, or expired"), atomic on SQLite and PostgreSQL alike.

Why not a PostgreSQL advisory lock: it belongs to one database connection,
so it is lost or leaked as the pool recycles connections, it does not exist
on SQLite (the single-process default), and it gives no bound on how long a
hung replica keeps the work. A lease with a TTL has none of these problems.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.db.base import utcnow
from edgefleet.server.db.upsert import insert_for
from edgefleet.server.scheduler.tables import Lease


async def acquire(db: AsyncSession, name: str, holder: str, ttl: float) -> bool:
    """Take or renew the lease; True if ``holder`` has it now."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    stmt = insert_for(db, Lease).values(name=name, holder=holder, expires_at=expires)
    await db.execute(stmt.on_conflict_do_nothing(index_elements=[Lease.name]))
    result = await db.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < now))
        .values(holder=holder, expires_at=expires)
    )
    await db.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


RENEW_SHARE = 3
"""A held lease is renewed once a ``ttl / RENEW_SHARE`` has passed since its last
renewal, not on every tick: each renewal is a write transaction, and an idle
server renewing three leases every second spent a good part of its idle CPU
(and of SQLite's WAL) on them. Renewing at a third of the TTL still leaves
two renewals' worth of slack before another replica may take it over."""


class Holding:
    """One lease as this replica's loop sees it: :meth:`hold` answers from
    memory while a recent renewal still covers the lease, and goes to the
    database only to take it, or to renew it when due."""

    def __init__(
        self,
        name: str,
        holder: str,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.holder, self.ttl, self.clock = name, holder, ttl, clock
        self.held = False
        self._renewed = 0.0

    async def hold(self, session: Callable[[], AbstractAsyncContextManager[AsyncSession]]) -> bool:
        """True while this replica holds the lease (renewing it when due)."""
        now = self.clock()
        if self.held and now - self._renewed < self.ttl / RENEW_SHARE:
            return True
        async with session() as db:
            self.held = await acquire(db, self.name, self.holder, self.ttl)
        if self.held:
            self._renewed = now
        return self.held

    def forget(self) -> None:
        """After a release: the next :meth:`hold` asks the database again."""
        self.held = False


async def release(db: AsyncSession, name: str, holder: str) -> None:
    await db.execute(
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    await db.commit()
