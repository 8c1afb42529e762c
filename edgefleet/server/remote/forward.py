"""Port-forward: raw TCP to a service of a job (members) or to any host:port
as seen from a device (operators), as binary WebSocket messages.
``edgefleet port-forward`` listens locally and opens one socket per connection."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.deps import websocket_caller
from edgefleet.server.errors import ApiError, BadGateway, Unavailable
from edgefleet.server.remote import targets
from edgefleet.wire.mux import Stream, StreamError

router = APIRouter()


async def _relay(websocket: WebSocket, stream: Stream) -> None:
    async def up() -> None:
        with contextlib.suppress(WebSocketDisconnect, StreamError, RuntimeError):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes"):
                    await stream.send(message["bytes"])
        with contextlib.suppress(StreamError):
            await stream.close()

    task = asyncio.create_task(up())
    try:
        with contextlib.suppress(StreamError):
            while (chunk := await stream.recv()) is not None:
                await websocket.send_bytes(chunk)
    except (RuntimeError, WebSocketDisconnect):
        pass
    finally:
        task.cancel()
        if not stream.closed:
            with contextlib.suppress(Exception):
                await stream.reset("forward closed")
        with contextlib.suppress(RuntimeError):
            await websocket.close(1000)


async def _open(
    ctx: ServerContext, websocket: WebSocket, device_id: str, header: dict[str, Any]
) -> None:
    try:
        stream = await ctx.hub.open_stream(device_id, header)
    except ApiError as exc:
        error = (
            BadGateway(exc.message)
            if isinstance(exc, Unavailable) and "refused" in exc.message
            else exc
        )
        await websocket.close(4000 + error.status, error.message[:100])
        return
    await websocket.accept()
    await _relay(websocket, stream)


@router.websocket("/api/v1/devices/{device}/forward/ws")
async def forward_device(
    websocket: WebSocket, device: str, port: int, host: str = "127.0.0.1"
) -> None:
    ctx: ServerContext = websocket.app.state.ctx
    async with ctx.session() as db:
        caller = await websocket_caller(websocket, db)
        if caller is None:
            return
        try:
            target = await targets.device(db, caller, device, Permission.EXEC_DEVICE)
        except ApiError as exc:
            await websocket.close(4000 + exc.status, exc.message[:100])
            return
    ctx.events.record(
        "device.forward",
        target.project_pk,
        f"{caller.name} forwarded a connection to {host}:{port} on {target.name}",
        device_id=target.id,
        actor=caller.name,
    )
    await _open(
        ctx, websocket, target.id, {"kind": "tcp", "target": "host", "host": host, "port": port}
    )


@router.websocket("/api/v1/jobs/{job}/forward/ws")
async def forward_service(
    websocket: WebSocket, job: str, device: str, service: str, port: int
) -> None:
    ctx: ServerContext = websocket.app.state.ctx
    async with ctx.session() as db:
        caller = await websocket_caller(websocket, db)
        if caller is None:
            return
        try:
            target = await targets.workload(db, caller, job, device, service, Permission.READ)
        except ApiError as exc:
            await websocket.close(4000 + exc.status, exc.message[:100])
            return
    header = {
        "kind": "tcp",
        "target": "workload",
        "job": target.job.id,
        "service": service,
        "port": port,
    }
    await _open(ctx, websocket, target.device.id, header)
