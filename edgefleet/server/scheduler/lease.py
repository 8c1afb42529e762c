"""Leases: background work that must run on exactly one replica.

A row per lease in the shared database; a replica holds it while it keeps
renewing it (every scheduler tick) and loses it ``ttl`` seconds after it
stops (it died, or lost the database). Acquiring is one conditional UPDATE
("mine already, or expired"), atomic on SQLite and PostgreSQL alike.

Why not a PostgreSQL advisory lock: it belongs to one database connection,
so it is lost or leaked as the pool recycles connections, it does not exist
on SQLite (the single-process default), and it gives no bound on how long a
hung replica keeps the work. A lease with a TTL has none of these problems.
"""

from __future__ import annotations

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


async def release(db: AsyncSession, name: str, holder: str) -> None:
    await db.execute(
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    await db.commit()
