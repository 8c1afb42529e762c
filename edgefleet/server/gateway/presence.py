"""This replica's presence rows, kept without a write per heartbeat.

A device is online while its ``presence`` row's ``expires_at`` is ahead.
:func:`extend` pushes it forward for every device that heartbeated since the
last flush (one UPDATE per 500 devices); a device whose agent went quiet, or
whose replica died, is simply not extended and goes offline once it expires.
A clean disconnect deletes the row (:func:`clear`). Arrivals write the row
(:mod:`.arrivals`); the hub decides when each of these runs.

Why the writes are shaped as they are: on SQLite there is one writer, and
every connection waiting for it holds a pool slot that an API read needs.
At 10,000 devices a flush that rewrote every device row (~700 bytes with its
facts) to note ``last_seen`` put megabytes in the WAL every few seconds and
held the lock for as long; and a disconnect storm wrote one transaction per
device, each queueing for the lock in its own connection, until reads found
no connection at all. So:

- a presence row is extended only once a third of its time has run out
  (``REFRESH``): its narrow row is rewritten every few flushes, not each one,
  and it still never expires under a device that heartbeats;
- ``devices.last_seen`` is noted at most once per :data:`LAST_SEEN_EVERY`
  seconds per device (online devices show it to within that; an offline
  device's is when it left or was last noted);
- clean disconnects are written together: concurrent :func:`clear` calls join
  one transaction (group commit), each returning once its row is gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import partial

from sqlalchemy import delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.db.base import utcnow
from edgefleet.server.db.group import PerDatabase
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.gateway.grouped import Grouped

CHUNK = 500
REFRESH = 2 / 3
"""A row is extended once less than this share of ``ttl`` is left on it."""
LAST_SEEN_EVERY = 60.0
GROUP = 2000
"""Clean disconnects written in one transaction, at most."""


Sessions = async_sessionmaker[AsyncSession]


async def extend(sessions: Sessions, replica: str, device_pks: Sequence[int], ttl: float) -> None:
    """Keep ``device_pks`` online on ``replica`` (this one) for ``ttl`` more seconds."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    due = now + timedelta(seconds=ttl * REFRESH)
    noted = now - timedelta(seconds=LAST_SEEN_EVERY)
    # Rows locked in pk order: on PostgreSQL a flush in session order deadlocked
    # with other writers of the same device rows (seen at 2,000 devices).
    pks = sorted(device_pks)
    async with sessions() as db:
        for start in range(0, len(pks), CHUNK):
            chunk = pks[start : start + CHUNK]
            await db.execute(
                update(Presence)
                .where(
                    Presence.device_pk.in_(chunk),
                    Presence.replica == replica,
                    Presence.expires_at < due,
                )
                .values(expires_at=expires)
            )
            await db.execute(
                update(Device)
                .where(
                    Device.pk.in_(chunk), or_(Device.last_seen.is_(None), Device.last_seen < noted)
                )
                .values(last_seen=now)
            )
        await db.commit()


async def clear(sessions: Sessions, replica: str, device_pk: int) -> None:
    """The device left ``replica`` (this one) cleanly: offline now, last seen now.
    A row another replica wrote since (the device reconnected there) stays.
    Returns once written, in one transaction with the other departures of the
    moment (:class:`~edgefleet.server.gateway.grouped.Grouped`); raises what
    that transaction raised."""
    await _departures.of(sessions)((replica, device_pk))


async def _write_departures(sessions: Sessions, departed: list[tuple[str, int]]) -> list[None]:
    now = utcnow()
    by_replica: dict[str, list[int]] = {}
    for replica, pk in departed:
        by_replica.setdefault(replica, []).append(pk)
    async with sessions() as db:
        for replica, unsorted in by_replica.items():
            pks = sorted(unsorted)
            for start in range(0, len(pks), CHUNK):
                chunk = pks[start : start + CHUNK]
                await db.execute(
                    delete(Presence).where(
                        Presence.device_pk.in_(chunk), Presence.replica == replica
                    )
                )
                await db.execute(update(Device).where(Device.pk.in_(chunk)).values(last_seen=now))
        await db.commit()
    return [None] * len(departed)


_departures = PerDatabase(
    lambda sessions: Grouped(
        partial(_write_departures, sessions), max_group=GROUP, name="presence-departures"
    )
)
