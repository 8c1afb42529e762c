"""The scheduler's clock and fleet-following.

- Selector jobs follow the fleet: a device that enrolls, is relabeled or
  deleted triggers a reconcile of that project's selector jobs (debounced),
  and a periodic pass catches anything missed.
- Time-boxed jobs: a job whose ``start`` has come is assigned; one whose
  ``end`` has passed is expired (its workloads removed).

- Pushes that never arrived (the replica that accepted a change died before
  delivering it) are repeated: devices online but behind their desired
  generation get their desired state again.

Every pass is idempotent (see :mod:`edgefleet.server.jobs.assign`). With
several replicas, the clock runs only on the holder of the ``scheduler``
lease (:mod:`lease`); fleet-change reconciles run wherever the change
happened.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError

from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import utcnow
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.instances import idle as idle_instances
from edgefleet.server.jobs import desired
from edgefleet.server.jobs import service as jobs
from edgefleet.server.jobs.tables import Job
from edgefleet.server.rollouts import driver as rollouts
from edgefleet.server.scheduler import lease as lease_module
from edgefleet.tasks import cancel_all, every

log = logging.getLogger(__name__)

TICK = 1.0
FULL_PASS_EVERY = 120.0  # fleet changes reconcile at once; this only catches misses
SLOW_PASS_EVERY = 5.0
"""Seconds between the checks whose deadlines are coarse (an instance's idle
timeout, at least 10 s; a device behind for ``RESEND_AFTER``): each is a read
of the database, and an idle server made five a second before they were spaced."""
TERMINAL = ("cancelled", "expired")

LEASE = "scheduler"
LEASE_TTL = 10.0
RESEND_AFTER = 15.0

Lease = Callable[[], Awaitable[bool]]


class Scheduler:
    def __init__(self, ctx: ServerContext, lease: Lease | None = None) -> None:
        self.ctx = ctx
        self.lease = lease or self._database_lease
        self.leader = False
        self._holding = lease_module.Holding(LEASE, ctx.replica, LEASE_TTL)
        self._resent: dict[int, float] = {}
        self._dirty: set[int] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.passes = 0
        self._last_full = 0.0  # loop time of the last full reconcile pass
        self._last_slow = 0.0  # loop time of the last SLOW_PASS_EVERY checks

    async def start(self) -> None:
        self.ctx.hub.on_fleet_change(self.fleet_changed)
        clock = every(TICK, self.run_pass, log, "scheduler pass")
        self._tasks = [
            asyncio.create_task(self._follow(), name="scheduler-follow"),
            asyncio.create_task(clock, name="scheduler-clock"),
        ]

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        if self.leader:
            try:
                async with self.ctx.session() as db:
                    await lease_module.release(db, LEASE, self.ctx.replica)
                self._holding.forget()
            except SQLAlchemyError as exc:  # another replica takes over once it expires
                log.warning(
                    "could not release the scheduler lease (expires in %gs): %s", LEASE_TTL, exc
                )

    async def _database_lease(self) -> bool:
        held = await self._holding.hold(self.ctx.session)
        if held != self.leader:
            log.info(
                "replica %s %s the scheduler lease", self.ctx.replica, "took" if held else "lost"
            )
            self.leader = held
        return held

    async def fleet_changed(self, project_pk: int) -> None:
        self._dirty.add(project_pk)
        self._wake.set()

    async def _follow(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0.05)  # debounce a burst of enrollments
            dirty, self._dirty = self._dirty, set()
            try:
                await self.reconcile_projects(dirty)
            except Exception:  # a supervisor loop: retried with the next change or pass
                log.exception("following the fleet failed")
                self._dirty |= dirty

    async def reconcile_projects(self, project_pks: set[int] | None) -> None:
        async with self.ctx.session() as db:
            query = select(Job).where(Job.state.not_in(TERMINAL), Job.selector.is_not(None))
            if project_pks is not None:
                query = query.where(Job.project_pk.in_(project_pks))
            for job in list(await db.scalars(query)):
                await jobs.apply(self.ctx, db, job)

    async def run_pass(self) -> None:
        """One tick of the clock (every ``TICK``); only the lease holder works."""
        if not await self.lease():
            return
        await self.tick()
        await rollouts.drive(self.ctx)
        now = asyncio.get_running_loop().time()
        if now - self._last_slow >= SLOW_PASS_EVERY:
            self._last_slow = now
            await idle_instances.stop_idle(self.ctx)  # personal instances (issue 21)
            await self.resend_stale()
        if now - self._last_full > FULL_PASS_EVERY:
            self._last_full = now
            await self.reconcile_projects(None)

    async def resend_stale(self) -> None:
        """Devices online but behind their desired generation get it again, once
        they have been behind for ``RESEND_AFTER`` (and then every
        ``RESEND_AFTER``). A device first seen behind is only noted: it was most
        likely just pushed to, and pushing at once again doubled every fan-out
        (10,000 states built and sent twice, the second while agents were still
        applying the first)."""
        now = utcnow()
        async with self.ctx.session() as db:
            stale = list(
                await db.scalars(
                    select(Device.pk)
                    .join(Presence, Presence.device_pk == Device.pk)
                    .where(
                        Presence.expires_at > now,
                        Device.applied_generation < Device.desired_generation,
                    )
                )
            )
        self._resent, due = overdue(self._resent, stale, asyncio.get_running_loop().time())
        if due:
            await desired.resend(self.ctx, due)  # not over a connection that was sent it

    async def tick(self) -> None:
        """Start jobs whose start has come; expire jobs whose end has passed."""
        self.passes += 1
        now = utcnow()
        async with self.ctx.session() as db:
            ended = list(
                await db.scalars(
                    select(Job).where(
                        Job.state.not_in(TERMINAL), Job.end.is_not(None), Job.end <= now
                    )
                )
            )
            for job in ended:
                await jobs.expire(self.ctx, db, job)
            starting = list(
                await db.scalars(
                    select(Job).where(
                        Job.state == "pending",
                        Job.start.is_not(None),
                        Job.start <= now,
                        or_(Job.end.is_(None), Job.end > now),
                    )
                )
            )
            for job in starting:
                await jobs.apply(self.ctx, db, job)


def overdue(
    since: dict[int, float], stale: list[int], now: float
) -> tuple[dict[int, float], list[int]]:
    """(when each stale device was last pushed to or first seen behind, those
    due again): a device seen behind for the first time starts its wait now;
    one no longer behind is forgotten."""
    noted = {pk: since.get(pk, now) for pk in stale}
    due = [pk for pk, at in noted.items() if now - at > RESEND_AFTER]
    for pk in due:
        noted[pk] = now
    return noted, due
