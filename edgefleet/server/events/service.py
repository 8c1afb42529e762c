"""The event log: what happened, for people (events API, portal feed, audit).

Recording never waits for the database: events are queued and written in
batches (a connect storm of 10,000 devices is 10,000 events), then published
on the bus as ``ef.events.<project_pk>`` for live views on every replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.bus.base import Bus, BusError, BusMessage
from edgefleet.server.bus.envelopes import EnvelopeError, EventNotice, read_event
from edgefleet.server.db.base import utcnow
from edgefleet.server.events import audit
from edgefleet.server.events.tables import Event
from edgefleet.server.pagination import Page, PageParams, keyset_page

log = logging.getLogger(__name__)


@dataclass
class PendingEvent:
    kind: str
    project_pk: int | None
    message: str = ""
    device_id: str | None = None
    job_id: str | None = None
    actor: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    time: datetime = field(default_factory=utcnow)

    def row(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "project_pk": self.project_pk,
            "kind": self.kind,
            "device_id": self.device_id,
            "job_id": self.job_id,
            "actor": self.actor,
            "message": self.message[:1024],
            "data": self.data,
        }

    def wire(self) -> bytes:
        """The bus body live views receive (:class:`~edgefleet.server.bus.envelopes.EventNotice`)."""
        row = self.row()
        row["time"] = self.time.isoformat().replace("+00:00", "Z")
        return EventNotice.model_validate(row).encode()


def received(message: BusMessage) -> dict[str, Any] | None:
    """An event notice a live view got from the bus, as a dict; None (said once in
    the log) for a body that is not one, so one bad message does not end a stream."""
    try:
        return read_event(message.data).model_dump()
    except EnvelopeError as exc:
        log.warning("dropped an event from the bus: %s", exc)
        return None


def events_subject(project_pk: int | None) -> str:
    return f"ef.events.{project_pk if project_pk is not None else 'system'}"


class EventLog:
    def __init__(self, sessions: Any, bus: Bus, flush_every: float = 0.25) -> None:
        self._sessions = sessions
        self._bus = bus
        self._queue: list[PendingEvent] = []
        self._wake = asyncio.Event()
        self._flush_every = flush_every
        self._task: asyncio.Task[None] | None = None
        self._flushed = asyncio.Event()

    def record(self, kind: str, project_pk: int | None, message: str = "", **fields: Any) -> None:
        self._queue.append(
            PendingEvent(kind=kind, project_pk=project_pk, message=message, **fields)
        )
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self._flush_every)
            try:
                await self.flush()
            except Exception:  # the loop outlives one bad write; flush kept the batch
                log.exception("writing events failed; will retry")
                await asyncio.sleep(1)

    async def flush(self) -> None:
        if not self._queue:
            return
        batch, self._queue = self._queue, []
        try:
            async with self._sessions() as db:
                await db.execute(insert(Event), [e.row() for e in batch])
                await db.commit()
        except BaseException:  # failed or cancelled (stop): the next flush writes them
            self._queue[:0] = batch
            raise
        unpublished = 0
        for event in batch:
            try:
                await self._bus.publish(events_subject(event.project_pk), event.wire())
            except BusError:
                unpublished += 1
        if unpublished:
            log.warning(
                "%d of %d events stored but not published on the bus: live watchers miss them",
                unpublished,
                len(batch),
            )


@dataclass
class EventFilter:
    """What to look for in the log; every field optional."""

    project_pk: int | None = None
    device_id: str | None = None
    job_id: str | None = None
    kind: str | None = None  # exact, or a prefix ending in "."
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    owned_only: bool = False  # only projects the caller owns (the Audit page)

    def apply(self, query: Any, caller: Caller) -> Any:
        condition = audit.where_visible(caller)
        if condition is not None:
            query = query.where(condition)
        if self.owned_only and not caller.is_admin:
            query = query.where(Event.project_pk.in_(audit.owned(caller)))
        if self.project_pk is not None:
            query = query.where(Event.project_pk == self.project_pk)
        if self.device_id is not None:
            query = query.where(Event.device_id == self.device_id)
        if self.job_id is not None:
            query = query.where(Event.job_id == self.job_id)
        if self.kind:
            kind = self.kind
            query = query.where(
                Event.kind.startswith(kind) if kind.endswith(".") else Event.kind == kind
            )
        if self.actor:
            query = query.where(Event.actor == self.actor)
        if self.since is not None:
            query = query.where(Event.time >= self.since)
        if self.until is not None:
            query = query.where(Event.time < self.until)
        return query


async def search(
    db: AsyncSession,
    caller: Caller,
    where: EventFilter,
    page: PageParams,
    *,
    newest_first: bool = False,
) -> Page[Event]:
    """Events the caller may see, matching ``where``: oldest first, or newest first
    (the Audit page and the feeds read backwards)."""
    query = where.apply(select(Event), caller)
    return await keyset_page(db, query, Event.pk, page, newest_first=newest_first)


async def recent(
    db: AsyncSession,
    caller: Caller,
    *,
    device_id: str | None = None,
    job_id: str | None = None,
    limit: int = 20,
) -> list[Event]:
    """The latest events the caller may see, newest first (the portal's feeds)."""
    where = EventFilter(device_id=device_id, job_id=job_id)
    found = await search(db, caller, where, PageParams(limit=limit, after=0), newest_first=True)
    return found.items
