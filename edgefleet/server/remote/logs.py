"""Logs of a job's services (per device and service) and of agents, with follow.

Each device streams its lines over its own connection; the server merges
them into one response, prefixed ``device/service |`` like ``docker compose
logs``, or as JSON lines with ``format=jsonl``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.deps import CallerDep, Ctx, Db
from edgefleet.server.errors import ApiError, Invalid
from edgefleet.server.jobs import service as jobs
from edgefleet.server.remote import targets
from edgefleet.server.telemetry import offline
from edgefleet.wire.mux import Stream, StreamError

log = logging.getLogger(__name__)
router = APIRouter(tags=["logs"])

_DONE = object()


def _format(record: dict[str, Any], fmt: str) -> bytes:
    if fmt == "jsonl":
        return (json.dumps(record) + "\n").encode()
    prefix = (
        f"{record.get('device_name', '')}/{record.get('service', '')}"
        if record.get("service")
        else record.get("device_name", "")
    )
    return f"{prefix} | {record.get('text', '')}\n".encode()


async def _merged(
    ctx: ServerContext,
    request: Request,
    opens: list[tuple[dict[str, Any], dict[str, Any]]],
    fmt: str,
) -> AsyncIterator[bytes]:
    """Open one stream per device, yield their lines as they arrive."""
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1000)
    streams: list[Stream] = []

    async def read(device: dict[str, Any], header: dict[str, Any]) -> None:
        try:
            stream = await ctx.hub.open_stream(device["id"], header)
        except ApiError as exc:
            # Unreachable: what its agent last shipped, marked as stored (issue 18).
            try:
                stored = await offline.for_stream(ctx, device, header, exc.message)
                for record in stored or [{"text": f"(no logs: {exc.message})", "error": True}]:
                    await queue.put(
                        {**record, "device": device["id"], "device_name": device["name"]}
                    )
            finally:  # the merged response ends only when every device said it is done
                await queue.put(_DONE)
            return
        streams.append(stream)
        try:
            while (chunk := await stream.recv()) is not None:
                record = json.loads(chunk)
                record["device"], record["device_name"] = device["id"], device["name"]
                await queue.put(record)
        except (StreamError, ValueError, TypeError) as exc:  # reset; a line not a JSON object
            reason = exc.reason if isinstance(exc, StreamError) else f"bad line: {exc}"
            log.info("log stream of %s ended: %s", device["id"], reason)
            await queue.put(
                {
                    "device": device["id"],
                    "device_name": device["name"],
                    "text": f"(log stream ended: {reason})",
                    "error": True,
                }
            )
        finally:
            await queue.put(_DONE)

    tasks = [asyncio.create_task(read(d, h)) for d, h in opens]
    remaining = len(tasks)
    try:
        while remaining:
            try:
                item = await asyncio.wait_for(queue.get(), 15)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                continue
            if item is _DONE:
                remaining -= 1
                continue
            yield _format(item, fmt)
    finally:
        for task in tasks:
            task.cancel()
        for stream in streams:
            await stream.reset("client went away")  # idempotent; never raises


def _check_format(fmt: str) -> str:
    if fmt not in ("text", "jsonl"):
        raise Invalid("format must be text or jsonl", field="format")
    return fmt


@router.get("/jobs/{job}/logs")
async def job_logs(
    request: Request,
    job: str,
    caller: CallerDep,
    db: Db,
    ctx: Ctx,
    device: str | None = Query(None, description="one device (id or name)"),
    service: str | None = Query(None, description="one service"),
    tail: int | None = Query(None, ge=0, le=100_000, description="last N lines per service"),
    since: datetime | None = Query(None, description="only lines after this time"),
    follow: bool = Query(False, description="keep streaming new lines"),
    format: str = Query("text", description="text (prefixed lines) or jsonl"),
) -> StreamingResponse:
    fmt = _check_format(format)
    found = await jobs.find(db, caller, job)
    if service is not None and service not in (found.resolved or {}).get("services", {}):
        raise Invalid(f"job {found.id} has no service {service!r}", field="service")
    devices = await targets.job_devices(db, found, device)
    header: dict[str, Any] = {
        "kind": "logs",
        "job": found.id,
        "service": service,
        "tail": tail,
        "follow": follow,
    }
    if since is not None:
        header["since"] = since.isoformat()
    opens = [({"id": d.id, "name": d.name, "pk": d.pk}, header) for d in devices]
    media = "application/x-ndjson" if fmt == "jsonl" else "text/plain; charset=utf-8"
    release = ctx.limits.claim_stream(caller.user_id, devices[0].id if len(devices) == 1 else None)
    body = ctx.limits.held(_merged(ctx, request, opens, fmt), release)
    return StreamingResponse(body, media_type=media)


@router.get("/devices/{device}/logs")
async def agent_logs(
    request: Request,
    device: str,
    caller: CallerDep,
    db: Db,
    ctx: Ctx,
    tail: int = Query(200, ge=0, le=100_000),
    follow: bool = Query(False),
    format: str = Query("text"),
) -> StreamingResponse:
    """The agent's own log (operators)."""
    fmt = _check_format(format)
    target = await targets.device(db, caller, device, Permission.MANAGE_DEVICES)
    opens = [
        (
            {"id": target.id, "name": target.name},
            {"kind": "agent-logs", "tail": tail, "follow": follow},
        )
    ]
    media = "application/x-ndjson" if fmt == "jsonl" else "text/plain; charset=utf-8"
    release = ctx.limits.claim_stream(caller.user_id, target.id)
    body = ctx.limits.held(_merged(ctx, request, opens, fmt), release)
    return StreamingResponse(body, media_type=media)
