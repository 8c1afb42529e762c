"""This replica's presence rows, kept without a write per heartbeat.

A device is online while its ``presence`` row's ``expires_at`` is ahead.
:func:`extend` pushes it forward for every device that heartbeated since the
last flush (one UPDATE per 500 devices); a device whose agent went quiet, or
whose replica died, is simply not extended and goes offline once it expires.
A clean disconnect deletes the row at once (:func:`clear`). Arrivals write
the row (:mod:`.arrivals`); the hub decides when each of these runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.db.base import utcnow
from edgefleet.server.devices.tables import Device, Presence

CHUNK = 500


Sessions = async_sessionmaker[AsyncSession]


async def extend(sessions: Sessions, replica: str, device_pks: Sequence[int], ttl: float) -> None:
    """Keep ``device_pks`` online on ``replica`` (this one) for ``ttl`` more seconds."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    async with sessions() as db:
        for start in range(0, len(device_pks), CHUNK):
            chunk = device_pks[start : start + CHUNK]
            await db.execute(
                update(Presence)
                .where(Presence.device_pk.in_(chunk), Presence.replica == replica)
                .values(expires_at=expires)
            )
            await db.execute(update(Device).where(Device.pk.in_(chunk)).values(last_seen=now))
        await db.commit()


async def clear(sessions: Sessions, replica: str, device_pk: int) -> None:
    """The device left ``replica`` (this one) cleanly: offline now, last seen now.
    A row another replica wrote since (the device reconnected there) stays."""
    async with sessions() as db:
        await db.execute(
            delete(Presence).where(Presence.device_pk == device_pk, Presence.replica == replica)
        )
        await db.execute(update(Device).where(Device.pk == device_pk).values(last_seen=utcnow()))
        await db.commit()
