"""Enrollment: a provisioning key in, a device and its credential out."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.labels import LabelError, check_labels
from edgefleet.server.auth import secrets
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import new_id
from edgefleet.server.deps import Ctx, Db
from edgefleet.server.devices.schemas import EnrollIn, EnrollOut
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import Conflict, Invalid, TooManyRequests, Unauthorized
from edgefleet.server.keys import service as keys
from edgefleet.server.projects.tables import Project
from edgefleet.wire.messages import DeviceFacts

router = APIRouter(tags=["agents"])


async def _free_name(db: AsyncSession, project_pk: int, wanted: str) -> str:
    taken = set(
        await db.scalars(
            select(Device.name).where(
                Device.project_pk == project_pk, Device.name.like(f"{wanted}%")
            )
        )
    )
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted}-{n}" in taken:
        n += 1
    return f"{wanted}-{n}"


def _default_name(facts: DeviceFacts) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", facts.resources.hostname or "device").strip("-._")
    return (name or "device")[:50]


def _label_clashes(key_labels: dict[str, str], agent_labels: dict[str, str]) -> list[str]:
    """Labels the agent asks for that contradict its key's. The key was made by a
    project member and says what the device is for (``tier=test``); the agent is run
    by whoever holds the device, so it may add labels but never change the key's:
    otherwise a volunteer could join prod jobs and receive their secrets."""
    return sorted(k for k, v in agent_labels.items() if k in key_labels and key_labels[k] != v)


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
async def enroll(body: EnrollIn, db: Db, ctx: Ctx, request: Request) -> EnrollOut:
    client = _throttled(request, ctx)
    try:
        agent_labels = check_labels(dict(body.labels))
    except LabelError as exc:
        raise Invalid(str(exc), field="labels") from exc
    try:
        facts = DeviceFacts.model_validate(body.facts)
    except ValueError as exc:
        raise Invalid(f"facts: {exc}", field="facts") from exc
    try:
        key = await keys.consume(db, body.provisioning_key)
    except Unauthorized:
        ctx.limits.enroll_per_ip.spend(client)  # only refused keys count
        raise
    clashes = _label_clashes(key.labels, agent_labels)
    if clashes:
        first = clashes[0]
        refusal = Invalid(
            f"label {first!r} is set by the provisioning key to {key.labels[first]!r}; "
            f"the agent asked for {agent_labels[first]!r}. Key labels cannot be overridden: "
            "drop --label " + ", ".join(f"{k}=…" for k in clashes),
            field=f"labels.{first}",
            labels=clashes,
        )
        await db.rollback()  # gives the key's use back
        raise refusal
    project = await db.scalar(select(Project).where(Project.pk == key.project_pk))
    assert project is not None
    if body.name is not None:
        exists = await db.scalar(
            select(Device.pk).where(Device.project_pk == project.pk, Device.name == body.name)
        )
        if exists is not None:
            message = (
                f"a device named {body.name!r} already exists in project {project.name!r}; "
                "pick another --name or delete the old device"
            )
            await db.rollback()  # gives the key's use back
            raise Conflict(message, field="name")
        name = body.name
    else:
        name = await _free_name(db, project.pk, _default_name(facts))
    credential = secrets.generate(secrets.DEVICE_PREFIX)
    device = Device(
        id=new_id("d"),
        project_pk=project.pk,
        name=name,
        labels={**agent_labels, **key.labels},  # the key's labels win
        meta={},
        facts=facts.model_dump(mode="json"),
        agent_version=facts.agent_version,
        credential_hash=secrets.digest(credential),
        public_key=body.public_key,
        enrolled_with=key.id,
    )
    db.add(device)
    await db.commit()
    ctx.events.record(
        "device.enrolled",
        project.pk,
        f"device {name} enrolled with key {key.prefix}…",
        device_id=device.id,
        data={"labels": device.labels},
    )
    await ctx.hub.fleet_changed(project.pk)
    return EnrollOut(
        device_id=device.id,
        name=name,
        project=project.name,
        project_id=project.id,
        credential=credential,
        heartbeat_interval=ctx.settings.heartbeat_interval,
    )
