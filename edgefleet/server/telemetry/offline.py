"""Logs of a device that is offline: what its agent last shipped.

``GET /jobs/{job}/logs`` (so ``edgefleet logs`` and the portal) asks the
device first; when it cannot be reached, :func:`records` gives the stored
lines instead, as the same records the live stream yields, each marked
``"stored": true`` and preceded by one line saying they are stored and when
they were shipped, so nobody mistakes them for live output.
"""

from __future__ import annotations

from typing import Any

from edgefleet.server.context import ServerContext
from edgefleet.server.telemetry import query

STORED = "stored, device offline"


async def records(
    ctx: ServerContext,
    device_pk: int,
    job_id: str,
    service: str | None,
    tail: int | None,
    reason: str = "",
) -> list[dict[str, Any]]:
    """The stored lines of ``job_id`` on the device (one service, or all), oldest
    first per service, at most ``tail`` per service; [] if none were kept.
    ``reason``: why the device could not be asked (its notice says "offline"
    only when that is why)."""
    why = STORED if not reason or "offline" in reason else f"stored; device: {reason}"
    async with ctx.session() as db:
        rows = await query.stored_logs(db, [device_pk], job_id)
    found: list[dict[str, Any]] = []
    for row in rows:
        if service is not None and row.service != service:
            continue
        lines = list(row.lines)
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        shipped = row.updated_at.isoformat(timespec="seconds")
        found.append(
            {
                "service": row.service,
                "text": f"({why}: last lines shipped at {shipped})",
                "stored": True,
                "notice": True,
            }
        )
        for line in lines:
            found.append(
                {
                    "service": row.service,
                    "stream": line.get("stream", "stdout"),
                    "time": line.get("time"),
                    "text": line.get("text", ""),
                    "stored": True,
                }
            )
    return found


async def for_stream(
    ctx: ServerContext, device: dict[str, Any], header: dict[str, Any], reason: str = ""
) -> list[dict[str, Any]]:
    """:func:`records` for a log stream that could not be opened (job logs only)."""
    if header.get("kind") != "logs" or "pk" not in device:
        return []
    tail = header.get("tail")
    return await records(
        ctx,
        int(device["pk"]),
        str(header["job"]),
        header.get("service"),
        int(tail) if tail is not None else None,
        reason,
    )
