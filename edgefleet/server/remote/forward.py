"""Port-forward: raw TCP to a declared port of a service of a job (members) or
to any host:port as seen from a device (those who may run commands on the
device: a raw port is as good as a shell), as binary WebSocket messages.
``edgefleet port-forward`` listens locally and opens one socket per connection;
it first asks with ``check=true`` (authorize, open nothing), so a refusal shows
at once rather than at the first connection.

A refusal is told after the handshake (close code 4000 + HTTP status, the
reason in plain words): closing before it would leave the client a bare 403."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.errors import ApiError, BadGateway, Invalid, Unavailable
from edgefleet.server.instances import access as instance_access
from edgefleet.server.remote import sockets, targets
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
            await stream.reset("forward closed")  # idempotent; never raises
        with contextlib.suppress(RuntimeError):
            await websocket.close(1000)


async def _refuse(websocket: WebSocket, error: ApiError) -> None:
    await websocket.accept()
    await websocket.close(4000 + error.status, error.message[:120])


async def _open(
    ctx: ServerContext,
    websocket: WebSocket,
    user: str,
    device_id: str,
    header: dict[str, Any],
    check: bool,
) -> None:
    if check:
        await websocket.accept()
        await websocket.close(1000, "allowed")
        return
    try:
        release = ctx.limits.claim_stream(user, device_id)
    except ApiError as exc:
        await _refuse(websocket, exc)
        return
    try:
        try:
            stream = await ctx.hub.open_stream(device_id, header)
        except ApiError as exc:
            error = (
                BadGateway(exc.message)
                if isinstance(exc, Unavailable) and "refused" in exc.message
                else exc
            )
            await _refuse(websocket, error)
            return
        await websocket.accept()
        await _relay(websocket, stream)
    finally:
        release()


@router.websocket("/api/v1/devices/{device}/forward/ws")
async def forward_device(
    websocket: WebSocket, device: str, port: int, host: str = "127.0.0.1", check: bool = False
) -> None:
    async def find(db: sockets.Session, caller: Caller) -> targets.DeviceTarget:
        target = await targets.device(db, caller, device, Permission.EXEC_DEVICE)
        _valid_port(port)
        return target

    found = await sockets.authorize(websocket, find, _refuse)
    if found is None:
        return
    ctx, caller, target = found.ctx, found.caller, found.target
    if check:
        await _open(ctx, websocket, caller.user_id, target.id, {}, check)
        return
    ctx.events.record(
        "device.forward",
        target.project_pk,
        f"{caller.name} forwarded a connection to {host}:{port} on {target.name}",
        device_id=target.id,
        actor=caller.name,
    )
    await _open(
        ctx,
        websocket,
        caller.user_id,
        target.id,
        {"kind": "tcp", "target": "host", "host": host, "port": port},
        check,
    )


@router.websocket("/api/v1/jobs/{job}/forward/ws")
async def forward_service(
    websocket: WebSocket, job: str, device: str, service: str, port: int, check: bool = False
) -> None:
    async def find(db: sockets.Session, caller: Caller) -> targets.WorkloadTarget:
        target = await targets.service_port(db, caller, job, device, service, port, Permission.READ)
        await instance_access.check_proxy(db, caller, target.job)  # personal instances
        return target

    found = await sockets.authorize(websocket, find, _refuse)
    if found is None:
        return
    ctx, caller, target = found.ctx, found.caller, found.target
    header = {
        "kind": "tcp",
        "target": "workload",
        "job": target.job.id,
        "service": service,
        "port": port,
    }
    await _open(ctx, websocket, caller.user_id, target.device.id, header, check)


def _valid_port(port: int) -> None:
    if not 0 < port < 65536:
        raise Invalid(f"port {port} is out of range: ports are 1 to 65535", field="port")
