from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from edgefleet.server.auth.caller import Caller
from edgefleet.server.bus.base import BusMessage
from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.events.tables import Event
from edgefleet.server.pagination import Page, next_cursor
from edgefleet.server.projects import service as projects
from edgefleet.server.schemas import Output, Timestamp

router = APIRouter(tags=["events"])


class EventOut(Output):
    id: int
    time: Timestamp
    kind: str
    project: str | None = None
    device: str | None = None
    job: str | None = None
    actor: str | None = None
    message: str
    data: dict[str, Any]


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
) -> Page[EventOut]:
    query = select(Event).where(Event.pk > page.after)
    visible = caller.visible_projects()
    if visible is not None:
        query = query.where(Event.project_pk.in_(visible))
    if project:
        query = query.where(Event.project_pk == (await projects.find(db, caller, project)).pk)
    if device:
        query = query.where(Event.device_id == device)
    if job:
        query = query.where(Event.job_id == job)
    if kind:
        query = query.where(
            Event.kind.startswith(kind) if kind.endswith(".") else Event.kind == kind
        )
    if since:
        query = query.where(Event.time >= since)
    rows = list(await db.scalars(query.order_by(Event.pk).limit(page.limit + 1)))
    names = await projects.names(db, {e.project_pk for e in rows if e.project_pk is not None})
    items = [
        EventOut(
            id=e.pk,
            time=e.time,
            kind=e.kind,
            project=names[e.project_pk].name if e.project_pk in names else None,
            device=e.device_id,
            job=e.job_id,
            actor=e.actor,
            message=e.message,
            data=e.data,
        )
        for e in rows[: page.limit]
    ]
    return Page(items=items, next=next_cursor([e.pk for e in rows], page.limit))


def _visible(caller: Caller, event: dict[str, Any]) -> bool:
    project_pk = event.get("project_pk")
    return caller.is_admin or (project_pk is not None and project_pk in caller.roles)


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

    async def on_event(message: BusMessage) -> None:
        event = json.loads(message.data)
        if not _visible(caller, event):
            return
        if device and event.get("device_id") != device:
            return
        if job and event.get("job_id") != job:
            return
        if kind and not str(event.get("kind", "")).startswith(kind):
            return
        if not queue.full():
            queue.put_nowait(event)

    subscription = await ctx.bus.subscribe("ef.events.>", on_event)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b": connected\n\n"
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                event.pop("project_pk", None)
                yield f"event: {event['kind']}\ndata: {json.dumps(event)}\n\n".encode()
        finally:
            await subscription.unsubscribe()

    return StreamingResponse(body(), media_type="text/event-stream")


@router.get("/devices/{device}/events", response_model=Page[EventOut])
async def device_events(
    device: str,
    caller: CallerDep,
    db: Db,
    page: Paging,
    kind: str | None = Query(None, description="exact kind, or a prefix ending in '.'"),
    since: datetime | None = None,
) -> Page[EventOut]:
    """A device's events (404 outside the caller's projects)."""
    from edgefleet.server.devices import service as devices

    found, _ = await devices.find(db, caller, device)
    return await list_events(caller, db, page, device=found.id, kind=kind, since=since)


@router.get("/jobs/{job}/events", response_model=Page[EventOut])
async def job_events(
    job: str,
    caller: CallerDep,
    db: Db,
    page: Paging,
    kind: str | None = Query(None, description="exact kind, or a prefix ending in '.'"),
    since: datetime | None = None,
) -> Page[EventOut]:
    """A job's events (404 outside the caller's projects)."""
    from edgefleet.server.jobs import service as jobs

    found = await jobs.find(db, caller, job)
    return await list_events(caller, db, page, job=found.id, kind=kind, since=since)
