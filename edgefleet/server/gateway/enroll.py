"""Enrollment: a provisioning key in, a device and its credential out.

The route checks the request's own input and the client's throttle; the
database work is done in groups by :class:`~.enrollments.Enrollments`."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request

from edgefleet.labels import LabelError, check_labels
from edgefleet.server.context import ServerContext
from edgefleet.server.deps import Ctx
from edgefleet.server.devices.schemas import EnrollIn, EnrollOut
from edgefleet.server.errors import Invalid, TooManyRequests, Unauthorized
from edgefleet.server.gateway.enrollment_group import Request as Enrollment
from edgefleet.server.gateway.hub import Hub
from edgefleet.wire.messages import DeviceFacts

router = APIRouter(tags=["agents"])


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
