"""Project volumes on the devices: sizes, removal and tar downloads, asked of
each agent over its connection (``volume`` streams, :mod:`edgefleet.agent.volumes`).

Only the project's own online devices are asked; an offline device keeps its
copy until it is asked again (its row says ``offline``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import utcnow
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.errors import ApiError, NotFound
from edgefleet.server.volumes.schemas import VolumeDevice
from edgefleet.wire.mux import Stream, StreamError


async def project_devices(db: AsyncSession, project_pk: int) -> list[tuple[str, str, bool]]:
    """(id, name, online) of the project's own devices."""
    rows = await db.execute(
        select(Device.id, Device.name, Presence.expires_at)
        .outerjoin(Presence, Presence.device_pk == Device.pk)
        .where(Device.project_pk == project_pk)
        .order_by(Device.pk)
    )
    now = utcnow()
    return [(d, n, bool(expires and expires > now)) for d, n, expires in rows.all()]


async def ask_all(
    ctx: ServerContext, devices: list[tuple[str, str, bool]], engine_name: str, op: str
) -> list[VolumeDevice]:
    """One ``usage`` or ``remove`` per online device, in parallel."""

    async def one(device_id: str, name: str, online: bool) -> VolumeDevice:
        row = VolumeDevice(device=device_id, device_name=name, state="offline")
        if not online:
            return row
        try:
            stream = await ctx.hub.open_stream(
                device_id, {"kind": "volume", "op": op, "volume": engine_name}, timeout=10
            )
        except ApiError as exc:
            return row.model_copy(update={"state": "unreachable", "error": exc.message})
        meta = stream.meta
        await _drain(stream)
        if op == "remove":
            state = "removed" if meta.get("removed") or not meta.get("exists") else "in use"
        else:
            state = "present" if meta.get("exists") else "absent"
        return row.model_copy(
            update={"state": state, "size": meta.get("size"), "error": meta.get("error")}
        )

    return list(await asyncio.gather(*(one(*d) for d in devices)))


async def _drain(stream: Stream) -> None:
    try:
        while await stream.recv() is not None:
            pass
    except StreamError:
        pass  # the answer was in the accept; the rest is nothing


async def open_archive(
    ctx: ServerContext, devices: list[tuple[str, str, bool]], device_ref: str, engine_name: str
) -> tuple[str, Stream]:
    """The tar stream of the volume on one of the project's devices."""
    found = [d for d in devices if device_ref in (d[0], d[1])]
    if not found:
        raise NotFound(f"the project has no device {device_ref!r}", field="device")
    device_id = found[0][0]
    stream = await ctx.hub.open_stream(
        device_id, {"kind": "volume", "op": "archive", "volume": engine_name}
    )
    return device_id, stream


async def chunks(stream: Stream) -> AsyncIterator[bytes]:
    try:
        while (chunk := await stream.recv()) is not None:
            yield chunk
    finally:
        if not stream.closed:
            await stream.reset("download closed")


__all__ = ["ask_all", "chunks", "open_archive", "project_devices"]
