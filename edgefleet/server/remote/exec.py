"""Running commands on devices and in workloads, every one audited.

- ``POST /devices/{id}/exec`` and ``POST /jobs/{id}/exec``: run to completion,
  answer exit code and (size-limited) output.
- ``WS /devices/{id}/exec/ws`` and ``WS /jobs/{id}/exec/ws``: interactive, with
  a TTY if asked; binary messages use the channel framing of
  :mod:`edgefleet.agent.tunnels` (0 stdin, 1 stdout, 2 stderr, 3 control).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, TypeVar

from fastapi import APIRouter, Query, WebSocket
from pydantic import Field
from starlette.websockets import WebSocketDisconnect

from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.errors import ApiError, BadGateway
from edgefleet.server.pagination import Page
from edgefleet.server.remote import exec_audit as exec_audit_log
from edgefleet.server.remote import sockets, targets
from edgefleet.server.remote.exec_audit import AuditOut
from edgefleet.server.remote.tables import ExecAudit
from edgefleet.server.schemas import Input, Output
from edgefleet.wire.commands import (
    EXEC,
    WORKLOAD_EXEC,
    CommandSpec,
    ExecArgs,
    ExecReply,
    ReplyError,
    WorkloadExecArgs,
)
from edgefleet.wire.mux import StreamError

router = APIRouter(tags=["exec"])
E = TypeVar("E", bound=ExecArgs)
MAX_OUTPUT = 1024 * 1024
CONTROL = 3


class ExecIn(Input):
    command: list[str] = Field(min_length=1, max_length=256)
    timeout: float = Field(30, gt=0, le=3600)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    max_output: int = Field(MAX_OUTPUT, gt=0, le=16 * 1024 * 1024)


class WorkloadExecIn(ExecIn):
    device: str
    service: str


class ExecOut(Output):
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    truncated: bool = False


async def _run(
    ctx: ServerContext,
    db: sockets.Session,
    device_id: str,
    spec: CommandSpec[E, ExecReply],
    args: E,
    audit: ExecAudit,
) -> ExecOut:
    """Send the command and wait for its reply; ``audit`` (already committed)
    is finished with the exit code or the reason there is none."""

    async def finish(exit_code: int | None, error: str | None) -> None:
        await exec_audit_log.finish(db, ctx.events, audit, exit_code, error)

    try:
        result = await ctx.hub.command(device_id, spec, args, args.timeout + 10)
    except ApiError as exc:
        await finish(None, exc.message)
        raise
    if not result.ok:
        await finish(None, result.error)
        raise BadGateway(f"the device could not run the command: {result.error}")
    try:
        reply = spec.reply_of(result.result)
    except ReplyError as exc:
        await finish(None, str(exc))
        raise BadGateway(f"the device answered the command with {exc}") from exc
    out = ExecOut.model_validate(reply.model_dump())
    await finish(out.exit_code, "timed out" if out.timed_out else None)
    return out


@router.post("/devices/{device}/exec", response_model=ExecOut)
async def exec_on_device(device: str, body: ExecIn, caller: CallerDep, db: Db, ctx: Ctx) -> ExecOut:
    target = await targets.device(db, caller, device, Permission.EXEC_DEVICE)
    audit = await exec_audit_log.start(
        db, ctx.events, caller.name, target.project_pk, target.id, body.command
    )
    args = ExecArgs.model_validate(body.model_dump())
    return await _run(ctx, db, target.id, EXEC, args, audit)


@router.post("/jobs/{job}/exec", response_model=ExecOut)
async def exec_in_workload(
    job: str, body: WorkloadExecIn, caller: CallerDep, db: Db, ctx: Ctx
) -> ExecOut:
    target = await targets.workload(
        db, caller, job, body.device, body.service, Permission.EXEC_WORKLOAD
    )
    audit = await exec_audit_log.start(
        db,
        ctx.events,
        caller.name,
        target.job.project_pk,
        target.device.id,
        body.command,
        job=target.job.id,
        service=body.service,
    )
    args = WorkloadExecArgs.model_validate(body.model_dump() | {"job": target.job.id})
    return await _run(ctx, db, target.device.id, WORKLOAD_EXEC, args, audit)


@router.get("/audit/exec", response_model=Page[AuditOut])
async def exec_audit(
    caller: CallerDep, db: Db, page: Paging, device: str | None = None, job: str | None = None
) -> Page[AuditOut]:
    return await exec_audit_log.listing(db, caller, page, device, job)


# --- interactive ----------------------------------------------------------------------------


@router.websocket("/devices/{device}/exec/ws")
async def exec_device_ws(
    websocket: WebSocket,
    device: str,
    command: list[str] = Query(["/bin/sh"]),
    tty: bool = True,
    cols: int = 80,
    rows: int = 24,
) -> None:
    async def find(db: sockets.Session, caller: Caller) -> targets.DeviceTarget:
        return await targets.device(db, caller, device, Permission.EXEC_DEVICE)

    found = await sockets.authorize(websocket, find, _deny)
    if found is None:
        return
    target = found.target
    header = {"kind": "exec", "command": command, "tty": tty, "cols": cols, "rows": rows}
    await _interactive(websocket, found, target.project_pk, target.id, header, command)


@router.websocket("/jobs/{job}/exec/ws")
async def exec_workload_ws(
    websocket: WebSocket,
    job: str,
    device: str,
    service: str,
    command: list[str] = Query(["/bin/sh"]),
    tty: bool = True,
    cols: int = 80,
    rows: int = 24,
) -> None:
    async def find(db: sockets.Session, caller: Caller) -> targets.WorkloadTarget:
        return await targets.workload(db, caller, job, device, service, Permission.EXEC_WORKLOAD)

    found = await sockets.authorize(websocket, find, _deny)
    if found is None:
        return
    target = found.target
    header = {
        "kind": "exec",
        "command": command,
        "tty": tty,
        "cols": cols,
        "rows": rows,
        "job": target.job.id,
        "service": service,
    }
    await _interactive(
        websocket,
        found,
        target.job.project_pk,
        target.device.id,
        header,
        command,
        job=target.job.id,
        service=service,
    )


async def _interactive(
    websocket: WebSocket,
    found: sockets.Authorized[Any],
    project_pk: int,
    device_id: str,
    header: dict[str, Any],
    command: list[str],
    *,
    job: str | None = None,
    service: str | None = None,
) -> None:
    """An interactive session once authorized: within the caller's stream
    limit, audited from start to exit code."""
    ctx, caller = found.ctx, found.caller
    try:
        release = ctx.limits.claim_stream(caller.user_id, device_id)
    except ApiError as exc:
        await _deny(websocket, exc)
        return
    try:
        async with ctx.session() as db:
            audit = await exec_audit_log.start(
                db,
                ctx.events,
                caller.name,
                project_pk,
                device_id,
                command,
                job=job,
                service=service,
                interactive=True,
            )
        await _bridge_exec(ctx, websocket, device_id, header, audit)
    finally:
        release()


async def _deny(websocket: WebSocket, exc: ApiError) -> None:
    await websocket.accept()
    await websocket.send_bytes(
        bytes([CONTROL]) + json.dumps({"error": exc.message, "status": exc.status}).encode()
    )
    await websocket.close(4000 + exc.status, exc.message[:100])


async def _finish_audit(
    ctx: ServerContext, audit: ExecAudit, exit_code: int | None, error: str | None
) -> None:
    """An interactive session's end, in a session of its own (the socket's
    first steps closed theirs long ago)."""
    async with ctx.session() as db:
        await exec_audit_log.finish(db, ctx.events, audit, exit_code, error)


async def _bridge_exec(
    ctx: ServerContext,
    websocket: WebSocket,
    device_id: str,
    header: dict[str, Any],
    audit: ExecAudit,
) -> None:
    await websocket.accept()
    try:
        stream = await ctx.hub.open_stream(device_id, header)
    except ApiError as exc:
        await _finish_audit(ctx, audit, None, exc.message)
        await _deny_accepted(websocket, exc)
        return
    exit_code: int | None = None
    error: str | None = None

    async def to_device() -> None:
        with contextlib.suppress(WebSocketDisconnect, StreamError, RuntimeError):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes")
                if data is None and message.get("text") is not None:
                    data = bytes([0]) + str(message["text"]).encode()
                if data:
                    await stream.send(data)
        with contextlib.suppress(StreamError):
            await stream.reset("client went away")

    async def to_client() -> None:
        nonlocal exit_code, error
        with contextlib.suppress(StreamError, WebSocketDisconnect, RuntimeError):
            while (chunk := await stream.recv()) is not None:
                if chunk[:1] == bytes([CONTROL]):
                    status = json.loads(chunk[1:] or b"{}")
                    exit_code = status.get("exit_code", exit_code)
                    error = status.get("error", error)
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await websocket.send_bytes(chunk)

    reader = asyncio.create_task(to_device())
    try:
        await to_client()
    finally:
        reader.cancel()
        if not stream.closed:
            await stream.reset("client went away")  # idempotent; never raises
        await _finish_audit(ctx, audit, exit_code, error)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(1000)


async def _deny_accepted(websocket: WebSocket, exc: ApiError) -> None:
    with contextlib.suppress(RuntimeError):
        await websocket.send_bytes(
            bytes([CONTROL]) + json.dumps({"error": exc.message, "status": exc.status}).encode()
        )
        await websocket.close(4000 + exc.status, exc.message[:100])
