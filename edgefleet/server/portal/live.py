"""``GET /portal/live``: one server-sent event stream per open page, saying
*which views are stale*, never carrying the data itself.

Every event the server records is published on the bus as
``ef.events.<project_pk>`` (see ``server/events/service.py``), on every
replica. This endpoint subscribes to them, keeps those of the viewer's
projects, and turns each into topic names::

    device.* -> devices, device-<id>      job.*  -> jobs, job-<id>, device-<id>
    any      -> events                    exec   -> device-<id>

``portal.js`` re-dispatches each topic as a DOM event ``ef-<topic>`` (at most
one per topic every 400 ms), and the page's live regions re-fetch their HTML
fragment with htmx (``hx-trigger="ef-devices from:body"``). The fragments are
rendered by the same code as the full page and with the viewer's rights, so
the stream leaks nothing but "something changed in a project you belong to".
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from edgefleet.server.auth import service as auth_service
from edgefleet.server.bus.base import BusMessage
from edgefleet.server.deps import Ctx
from edgefleet.server.events import service as events_service
from edgefleet.server.portal import web
from edgefleet.server.portal.web import ViewerDep

router = web.page_router()

KEEPALIVE = 15.0


def topics(event: dict[str, Any]) -> list[str]:
    kind = str(event.get("kind", ""))
    device, job = event.get("device_id"), event.get("job_id")
    found = ["events"]
    if kind.startswith("device."):
        found.append("devices")
    if kind.startswith("job."):
        found.append("jobs")
        if kind == "job.device":
            found.append("devices")  # readiness follows applied state
    if device:
        found.append(f"device-{device}")
    if job:
        found.append(f"job-{job}")
    return found


@router.get("/portal/live")
async def live(request: Request, viewer: ViewerDep, ctx: Ctx) -> StreamingResponse:
    caller = viewer.caller
    queue: asyncio.Queue[list[str]] = asyncio.Queue(maxsize=500)

    async def on_event(message: BusMessage) -> None:
        event = events_service.received(message)
        if event is None:
            return
        project_pk = event.get("project_pk")
        if not caller.is_admin and project_pk not in caller.roles:
            return
        if not queue.full():
            queue.put_nowait(topics(event))

    subscription = await ctx.bus.subscribe("ef.events.>", on_event)

    async def still_signed_in() -> bool:
        async with ctx.session() as db:
            return await auth_service.authenticate_session(db, viewer.session) is not None

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 3000\n: connected\n\n"
            while not await request.is_disconnected():
                try:
                    found = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except TimeoutError:
                    if not await still_signed_in():
                        yield b"event: signed-out\ndata: {}\n\n"
                        return
                    yield b": keep-alive\n\n"
                    continue
                while not queue.empty():  # coalesce a burst into one message
                    found.extend(queue.get_nowait())
                yield f"data: {json.dumps(sorted(set(found)))}\n\n".encode()
        finally:
            await subscription.unsubscribe()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
