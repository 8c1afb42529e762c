from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from edgefleet.server.auth.caller import Caller
from edgefleet.server.bus.base import BusMessage
from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.events import audit, service, view
from edgefleet.server.events.view import EventOut
from edgefleet.server.pagination import Page
from edgefleet.server.projects import service as projects
from edgefleet.server.schemas import _aware

log = logging.getLogger(__name__)
router = APIRouter(tags=["events"])


@router.get("/events", response_model=Page[EventOut])
async def list_events(
    caller: CallerDep,
    db: Db,
    page: Paging,
    project: str | None = None,
    device: str | None = None,
    job: str | None = None,
    kind: str | None = Query(None, description="exact kind, or a prefix ending in '.'"),
    since: datetime | None = None,
    until: Annotated[datetime | None, Query(description="events before this time")] = None,
    actor: Annotated[str | None, Query(description="who did it (user name)")] = None,
) -> Page[EventOut]:
    """Events of the caller's projects, oldest first. Audit kinds (users, tokens,
    logins, members, keys) only for the project's owners; those without a
    project, and failed logins, only for admins. Exec argv only for owners,
    operators and admins."""
    where = service.EventFilter(
        project_pk=(await projects.find(db, caller, project)).pk if project else None,
        device_id=device or None,
        job_id=job or None,
        kind=kind,
        actor=actor,
        since=_aware(since) if since else None,
        until=_aware(until) if until else None,
    )
    found = await service.search(db, caller, where, page)
    return Page(items=await view.outputs(db, caller, found.items), next=found.next)


def _visible(caller: Caller, event: dict[str, Any]) -> bool:
    return audit.visible(caller, event.get("project_pk"), str(event.get("kind", "")))


@router.get("/events/stream")
async def stream_events(
    request: Request,
    caller: CallerDep,
    ctx: Ctx,
    device: str | None = None,
    job: str | None = None,
    kind: str | None = None,
) -> StreamingResponse:
    """Server-sent events: one ``data:`` line of JSON per event, as they happen."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
    release = ctx.limits.claim_stream(caller.user_id)
    lost = [0]  # events dropped since the reader last caught up

    async def on_event(message: BusMessage) -> None:
        event = service.received(message)
        if event is None:
            return
        if not _visible(caller, event):
            return
        if device and event.get("device_id") != device:
            return
        if job and event.get("job_id") != job:
            return
        if kind and not str(event.get("kind", "")).startswith(kind):
            return
        if queue.full():  # a reader 1,000 events behind: it misses this one, and is told
            lost[0] += 1
            if lost[0] == 1:
                log.warning("event stream of user %s too slow: dropping events", caller.user_id)
            return
        queue.put_nowait(event)

    try:
        subscription = await ctx.bus.subscribe("ef.events.>", on_event)
    except BaseException:
        release()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b": connected\n\n"
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if lost[0]:  # an SSE comment: readers that look can tell they missed some
                    yield f": {lost[0]} events dropped (reading too slowly)\n\n".encode()
                    lost[0] = 0
                project_pk = event.pop("project_pk", None)
                event["data"] = audit.shown_data(
                    caller, project_pk, str(event.get("kind", "")), event.get("data") or {}
                )
                yield f"event: {event['kind']}\ndata: {json.dumps(event)}\n\n".encode()
        finally:
            await subscription.unsubscribe()

    return StreamingResponse(ctx.limits.held(body(), release), media_type="text/event-stream")


@dataclass(frozen=True)
class KindSince:
    """How one device's or one job's events are narrowed."""

    kind: str | None
    since: datetime | None


async def _kind_since(
    kind: str | None = Query(None, description="exact kind, or a prefix ending in '.'"),
    since: datetime | None = None,
) -> KindSince:
    return KindSince(kind, since)


Narrowed = Annotated[KindSince, Depends(_kind_since)]


@router.get("/devices/{device}/events", response_model=Page[EventOut])
async def device_events(
    device: str, caller: CallerDep, db: Db, page: Paging, narrowed: Narrowed
) -> Page[EventOut]:
    """A device's events (404 outside the caller's projects)."""
    from edgefleet.server.devices import service as devices

    found, _ = await devices.find(db, caller, device)
    return await list_events(
        caller, db, page, device=found.id, kind=narrowed.kind, since=narrowed.since
    )


@router.get("/jobs/{job}/events", response_model=Page[EventOut])
async def job_events(
    job: str, caller: CallerDep, db: Db, page: Paging, narrowed: Narrowed
) -> Page[EventOut]:
    """A job's events (404 outside the caller's projects)."""
    from edgefleet.server.jobs import service as jobs

    found = await jobs.find(db, caller, job)
    return await list_events(
        caller, db, page, job=found.id, kind=narrowed.kind, since=narrowed.since
    )
