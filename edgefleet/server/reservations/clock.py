"""Windows opening and closing: every ``--reservation-check-interval`` seconds,
reservations whose start or end fell since the last look get their devices'
jobs re-applied (a reserved job starts, an expired one stops, another
project's job waits or lands). Idempotent, so every replica may run it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select

from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import utcnow
from edgefleet.server.reservations import effects
from edgefleet.server.reservations.tables import Reservation, ReservationDevice

log = logging.getLogger(__name__)
CATCH_UP = timedelta(minutes=10)  # crossings while the server was down, re-applied at start


async def crossed(ctx: ServerContext, since_s: float, until_s: float) -> int:
    """Re-apply the jobs of reservations whose start or end is in (since, until]."""
    since = datetime.fromtimestamp(since_s, UTC)
    until = datetime.fromtimestamp(until_s, UTC)
    async with ctx.session() as db:
        edge = or_(
            and_(Reservation.start > since, Reservation.start <= until),
            and_(Reservation.end > since, Reservation.end <= until),
        )
        found = list(await db.scalars(select(Reservation.pk).where(edge)))
        if not found:
            return 0
        pks = set(
            await db.scalars(
                select(ReservationDevice.device_pk).where(
                    ReservationDevice.reservation_pk.in_(found)
                )
            )
        )
        return await effects.reapply_devices(ctx, db, pks, reservation_pks=found)


async def start(ctx: ServerContext) -> Callable[[], Awaitable[None]]:
    interval = ctx.settings.reservation_check_interval

    async def run() -> None:
        last = (utcnow() - CATCH_UP).timestamp()
        while True:
            now = utcnow().timestamp()
            try:
                await crossed(ctx, last, now)
                last = now
            except Exception:
                log.exception("re-applying jobs at reservation boundaries failed; retrying")
            await asyncio.sleep(interval)

    task = asyncio.create_task(run(), name="reservation-clock")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return stop
