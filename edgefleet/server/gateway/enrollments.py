"""Enrollments written in groups: one transaction for every request waiting.

A fleet's first start (or a lab plugging in a rack of devices) sends hundreds
of enrollments at once. Written one transaction each, SQLite's single writer
makes them queue behind each other's lock waits (~60/s on two cores); here
the requests that arrive while a group is being written wait for the next
group, and a group of up to ``MAX_GROUP`` is checked and committed together.
Each request still gets its own answer: a bad key, a taken name or a label
the key forbids refuses that request only, with nothing of it stored.

If the group's commit fails (another replica took a name in between), every
request of it is tried again alone, so one conflict never fails the others.

A group is checked and staged in a few queries whatever its size
(:mod:`.enrollment_group`). Credentials are 256-bit random secrets stored as
SHA-256 digests (:mod:`edgefleet.server.auth.secrets`): nothing here is a slow
hash, and the agents' reconnect path (one indexed lookup of the digest) is not
either.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import IntegrityError

from edgefleet.server.context import ServerContext
from edgefleet.server.errors import ApiError, Conflict
from edgefleet.server.gateway.enrollment_group import Enrolled, Request, stage

log = logging.getLogger(__name__)

MAX_GROUP = 128


class Enrollments:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._queue: list[Request] = []
        self._writer: asyncio.Task[None] | None = None
        self.groups = 0  # how many transactions enrollments took (for tests and logs)

    async def enroll(self, request: Request) -> Enrolled:
        """Queue ``request``, and answer once its group is committed (or refused)."""
        self._queue.append(request)
        if self._writer is None or self._writer.done():
            # A task, not the caller: a client hanging up must not abandon the group.
            self._writer = asyncio.create_task(self._drain(), name="enrollments")
        return await request.done

    async def _drain(self) -> None:
        while self._queue:
            group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            try:
                await self._write(group)
            except IntegrityError:
                for request in group:
                    if not request.done.done():
                        await self._write([request])
            except Exception as exc:  # answered to each waiting request as a 500
                log.exception("writing %d enrollments failed", len(group))
                for request in group:
                    if not request.done.done():
                        request.done.set_exception(exc)

    async def _write(self, group: list[Request]) -> None:
        async with self.ctx.session() as db:
            try:
                outcomes = await stage(db, group)
                await db.commit()
            except IntegrityError:
                await db.rollback()
                if len(group) > 1:
                    raise  # tried again one by one
                # only a request that was to be enrolled inserts anything
                outcomes = [
                    Conflict(
                        "another device took this name at the same moment; try again",
                        field="name",
                    )
                ]
        self.groups += 1
        for request, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, ApiError):
                request.done.set_exception(outcome)
            else:
                self._announce(outcome)
                request.done.set_result(outcome)

    def _announce(self, result: Enrolled) -> None:
        device, project = result.device, result.project
        self.ctx.events.record(
            "device.enrolled",
            project.pk,
            f"device {device.name} enrolled with key {result.key_prefix}…",
            device_id=device.id,
            data={"labels": device.labels},
        )
