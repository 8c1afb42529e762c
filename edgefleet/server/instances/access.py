"""The proxy's question for personal instances: may this caller open it?

A job that is an instance is opened only by its owner and the users it is
shared with -- not by the rest of its project, not by admins: an instance is a
person's workspace, and what it shows (notebooks, terminals) is theirs. Any
other caller gets the same 404 as for a job they cannot see, so an instance's
existence does not leak. Each allowed request also marks the instance as used
(written at most every ``TOUCH_EVERY`` seconds), which is what the idle stop
(:mod:`idle`) measures.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.db.base import utcnow
from edgefleet.server.errors import NotFound
from edgefleet.server.instances.service import may_open
from edgefleet.server.instances.tables import Instance
from edgefleet.server.jobs.tables import Job

TOUCH_EVERY = timedelta(seconds=5)


async def check_proxy(db: AsyncSession, caller: Caller, job: Job) -> None:
    """Raise 404 unless ``job`` is not an instance, or ``caller`` may open it."""
    instance = await db.scalar(select(Instance).where(Instance.job_pk == job.pk))
    if instance is None:
        return
    if not await may_open(db, caller, instance):
        raise NotFound(f"job {job.id!r} not found")
    now = utcnow()
    if now - instance.last_access >= TOUCH_EVERY:
        instance.last_access = now
        await db.commit()
