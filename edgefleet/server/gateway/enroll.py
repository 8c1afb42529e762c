"""Enrollment: a provisioning key in, a device and its credential out.

The route checks the request's own input and the client's throttle; the
database work is done in groups by :class:`~.enrollments.Enrollments`.

A fleet's first start sends thousands of these at once, and through FastAPI's
routing each one was matched against every route registered before it and
passed through its exception, exit-stack and dependency layers: more of the
server's CPU per enrollment than the enrollment itself (issue 16).
:class:`DirectEnroll` hands a well-formed request straight to the same
function instead (the agents' WebSocket skips even more: ``lane.py``); a
body that is not a valid :class:`EnrollIn` goes on to the routing, so every
refusal of malformed input is FastAPI's own, unchanged.
"""

from __future__ import annotations

import json
import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgefleet.labels import LabelError, check_labels
from edgefleet.server.context import ServerContext
from edgefleet.server.deps import Ctx
from edgefleet.server.devices.schemas import EnrollIn, EnrollOut
from edgefleet.server.errors import (
    ApiError,
    Invalid,
    TooManyRequests,
    Unauthorized,
    api_error_response,
)
from edgefleet.server.gateway.enrollment_group import Request as Enrollment
from edgefleet.server.gateway.hub import Hub
from edgefleet.wire.messages import DeviceFacts

router = APIRouter(tags=["agents"])
ENROLL_PATH = "/api/v1/agent/enroll"


def _default_name(facts: DeviceFacts) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", facts.resources.hostname or "device").strip("-._")
    return (name or "device")[:50]


def _throttled(request: Request, ctx: ServerContext) -> str:
    """The client's address, once it may try a provisioning key again: past
    ``enroll_failures_per_ip`` refused keys a minute, 429 with Retry-After."""
    client = request.client.host if request.client else "unknown"
    wait = ctx.limits.enroll_per_ip.retry_after(client)
    if wait is not None:
        raise TooManyRequests(
            f"too many refused enrollments from this address; try again in {wait} s",
            field="provisioning_key",
            retry_after=wait,
        )
    return client


@router.post("/agent/enroll", status_code=201, response_model=EnrollOut)
async def enroll(body: EnrollIn, ctx: Ctx, http: Request) -> EnrollOut:
    """Trade a provisioning key for a device and its credential (written together
    with the other enrollments waiting, see :mod:`.enrollments`)."""
    client = _throttled(http, ctx)
    try:
        agent_labels = check_labels(dict(body.labels))
    except LabelError as exc:
        raise Invalid(str(exc), field="labels") from exc
    try:
        facts = DeviceFacts.model_validate(body.facts)
    except ValueError as exc:
        raise Invalid(f"facts: {exc}", field="facts") from exc
    request = Enrollment(
        provisioning_key=body.provisioning_key,
        name=body.name,
        default_name=_default_name(facts),
        labels=agent_labels,
        facts=facts,
        public_key=body.public_key,
    )
    hub: Hub = http.app.state.hub  # the gateway's own route: the concrete hub
    try:
        done = await hub.enrollments.enroll(request)
    except Unauthorized:
        ctx.limits.enroll_per_ip.spend(client)  # only refused keys count
        raise
    await ctx.hub.fleet_changed(done.project.pk)
    return EnrollOut(
        device_id=done.device.id,
        name=done.device.name,
        project=done.project.name,
        project_id=done.project.id,
        credential=done.credential,
        heartbeat_interval=ctx.settings.heartbeat_interval,
    )


class DirectEnroll:
    """ASGI middleware: ``POST /api/v1/agent/enroll`` with a JSON body that is a
    valid :class:`EnrollIn` goes straight to :func:`enroll` (see the module's
    docstring); anything else goes on to the routing with its body as it came.

    Installed inside the body limit (which still bounds what is read here) and
    the metrics and freshness middleware; the route stays registered (OpenAPI)
    and is named in the scope, so metrics label the request by it. A refusal is
    answered as the app's handler answers it (:func:`api_error_response`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route: BaseRoute = next(r for r in router.routes if getattr(r, "name", "") == "enroll")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != ENROLL_PATH
            or scope["method"] != "POST"
            or scope.get("root_path")
            or not _json_body(scope)
        ):
            await self.app(scope, receive, send)
            return
        raw = await _read_body(receive)
        if raw is None:  # the client left before its body came: nothing to answer
            return
        try:  # as FastAPI does: the JSON decoded, then the model validated in Python mode
            body = EnrollIn.model_validate(json.loads(raw))
        except (ValueError, ValidationError, RecursionError):  # FastAPI answers it, as before
            await self.app(scope, _replay(raw, receive), send)
            return
        scope["route"] = self.route
        http = Request(scope, receive, send)
        try:
            answer = await enroll(body, http.app.state.ctx, http)
        except ApiError as exc:
            response = api_error_response(exc)
        else:
            response = JSONResponse(answer.model_dump(mode="json"), status_code=201)
        await response(scope, receive, send)


def _json_body(scope: Scope) -> bool:
    """The request says its body is JSON (FastAPI decodes nothing else as JSON)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value.split(b";", 1)[0].strip().lower() == b"application/json")
    return False


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None if the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(raw: bytes, receive: Receive) -> Receive:
    """``receive`` for the app, giving back the body already read, then the rest."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return replayed
