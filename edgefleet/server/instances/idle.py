"""Stopping instances nobody has opened for their application's idle timeout.

Run on every scheduler tick by the holder of the scheduler lease (one replica),
so an instance is stopped once. "Opened" means a request through the proxy
(:mod:`access` keeps ``last_access``); an instance is never stopped sooner than
its timeout after launch.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import utcnow
from edgefleet.server.instances import service
from edgefleet.server.instances.tables import Instance
from edgefleet.server.jobs.tables import Job


async def stop_idle(ctx: ServerContext) -> int:
    """Stop every running instance idle past its timeout; how many were stopped."""
    now = utcnow()
    stopped = 0
    async with ctx.session() as db:
        rows = await db.scalars(
            select(Instance)
            .join(Job, Job.pk == Instance.job_pk)
            .where(Job.state.not_in(service.STOPPED))
        )
        for instance in list(rows):
            if now - instance.last_access < timedelta(seconds=instance.idle_timeout):
                continue
            await service.stop(
                ctx,
                db,
                instance,
                reason=f"idle: no request through the proxy for {instance.idle_timeout} s",
                actor="scheduler",
            )
            stopped += 1
    return stopped
