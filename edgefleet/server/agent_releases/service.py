"""Agent releases and upgrade rollouts: the queries and transactions behind the routes."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.labels import parse_selector
from edgefleet.server.agent_releases.schemas import (
    ReleaseOut,
    UpgradeDeviceOut,
    UpgradeIn,
    UpgradeOut,
)
from edgefleet.server.agent_releases.tables import AgentRelease, AgentUpgrade
from edgefleet.server.agent_releases.upload import Wheel
from edgefleet.server.auth import secrets
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import new_id
from edgefleet.server.devices import query as q
from edgefleet.server.devices import service as devices
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from edgefleet.server.pagination import Page, PageParams, keyset_page
from edgefleet.server.projects import service as projects
from edgefleet.wire.upgrade import valid_version

WHEEL_MAGIC = b"PK\x03\x04"  # a wheel is a zip archive


# -- releases -------------------------------------------------------------------------------


def check_version(version: str, field: str = "version") -> str:
    if not valid_version(version):
        raise Invalid(
            f"version {version[:80]!r} is not a valid version (letters, digits, '.', '+', '-', "
            "'_'; no path separators or '..')",
            field=field,
        )
    return version


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise Forbidden("only administrators may upload agent releases")


async def upload(
    db: AsyncSession,
    caller: Caller,
    version: str,
    sha256: str,
    body: AsyncIterator[bytes],
    length: int | None,
    max_bytes: int,
) -> AgentRelease:
    """Store a wheel after checking its size, SHA-256 and shape; admins only."""
    require_admin(caller)
    check_version(version)
    sha256 = sha256.lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise Invalid("sha256 must be 64 hexadecimal digits", field="sha256")
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(
            f"the release is {length} bytes; the limit is {max_bytes} (--agent-release-max-bytes)"
        )
    chunks: list[bytes] = []
    size = 0
    digest = hashlib.sha256()
    async for chunk in body:
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(
                f"the release is over the limit of {max_bytes} bytes (--agent-release-max-bytes)"
            )
        digest.update(chunk)
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data.startswith(WHEEL_MAGIC):
        raise Invalid("the body is not a wheel (a zip archive)", field="body")
    if digest.hexdigest() != sha256:
        raise Invalid(
            f"sha256 does not match the body (its SHA-256 is {digest.hexdigest()})", field="sha256"
        )
    release = AgentRelease(
        id=new_id("rel"),
        version=version,
        sha256=sha256,
        size=size,
        wheel=data,
        created_by=caller.name,
    )
    db.add(release)
    try:
        await db.commit()
    except IntegrityError:
        await db.rollback()
        raise Conflict(f"agent release {version} exists already", field="version") from None
    return release


def release_out(release: AgentRelease) -> ReleaseOut:
    return ReleaseOut(
        id=release.id,
        version=release.version,
        sha256=release.sha256,
        size=release.size,
        created_at=release.created_at,
        created_by=release.created_by,
    )


async def list_releases(db: AsyncSession, page: PageParams) -> Page[AgentRelease]:
    return await keyset_page(db, select(AgentRelease), AgentRelease.pk, page)


async def publish(
    ctx: ServerContext, db: AsyncSession, caller: Caller, wheel: Wheel
) -> AgentRelease:
    """Store an uploaded wheel (checked against its hash and the size limit) and
    tell the event log."""
    release = await upload(
        db,
        caller,
        wheel.version,
        wheel.sha256,
        wheel.chunks,
        wheel.length,
        ctx.settings.agent_release_max_bytes,
    )
    ctx.events.record(
        "agent.release_uploaded",
        None,
        f"agent release {release.version} uploaded by {caller.name}",
        actor=caller.name,
    )
    return release


async def find_release(db: AsyncSession, version: str) -> AgentRelease | None:
    return await db.scalar(select(AgentRelease).where(AgentRelease.version == version))


async def wheel_for_device(db: AsyncSession, credential: str | None, version: str) -> bytes:
    """The wheel, for an enrolled device (its own credential); 401 for anyone else."""
    device = await db.scalar(
        select(Device.pk).where(Device.credential_hash == secrets.digest(credential or ""))
    )
    if not credential or device is None:
        raise Unauthorized("agent releases are downloaded with a device credential")
    check_version(version)
    data = await db.scalar(select(AgentRelease.wheel).where(AgentRelease.version == version))
    if data is None:
        raise NotFound(f"agent release {version} not found")
    return data


# -- upgrades -------------------------------------------------------------------------------


async def _targets(db: AsyncSession, caller: Caller, body: UpgradeIn) -> tuple[int, list[Device]]:
    """The devices to upgrade, all of one project the caller manages devices in."""
    if body.devices is not None:
        found: list[Device] = []
        for ref in dict.fromkeys(body.devices):
            device, _ = await devices.find(db, caller, ref)
            caller.require(device.project_pk, Permission.MANAGE_DEVICES, f"device {ref!r}")
            found.append(device)
        if len({d.project_pk for d in found}) > 1:
            raise Invalid(
                "the devices belong to several projects; upgrade each apart", field="devices"
            )
        return found[0].project_pk, found
    project = await projects.find(db, caller, body.project or "default")
    caller.require(project.pk, Permission.MANAGE_DEVICES, f"project {project.name!r}")
    selector = parse_selector(str(body.selector or ""))  # normalised to a string already
    rows = await db.scalars(
        select(Device)
        .where(Device.project_pk == project.pk, q.selector_clause(selector))
        .order_by(Device.pk)
    )
    chosen = list(rows)
    if not chosen:
        raise Invalid(f"no device of project {project.name} matches the selector", field="selector")
    return project.pk, chosen


async def create_upgrade(
    db: AsyncSession, caller: Caller, body: UpgradeIn, default_deadline: float
) -> AgentUpgrade:
    project_pk, targets = await _targets(db, caller, body)
    if await find_release(db, body.version) is None:
        raise Invalid(
            f"there is no agent release {body.version}; upload it first (POST /agent-releases)",
            field="version",
        )
    entries: list[dict[str, Any]] = [
        {
            "pk": d.pk,
            "id": d.id,
            "name": d.name,
            "state": "pending",
            "error": "",
            "batch": i // body.max_parallel,
        }
        for i, d in enumerate(targets)
    ]
    upgrade = AgentUpgrade(
        id=new_id("upg"),
        project_pk=project_pk,
        version=body.version,
        state="running",
        max_parallel=body.max_parallel,
        deadline=body.deadline or default_deadline,
        devices=entries,
        error="",
        created_by=caller.name,
    )
    db.add(upgrade)
    await db.commit()
    return upgrade


async def find_upgrade(db: AsyncSession, caller: Caller, ref: str) -> AgentUpgrade:
    upgrade = await db.scalar(select(AgentUpgrade).where(AgentUpgrade.id == ref))
    if upgrade is None or not caller.can(upgrade.project_pk, Permission.READ):
        raise NotFound(f"agent upgrade {ref!r} not found")
    return upgrade


async def list_upgrades(db: AsyncSession, caller: Caller, page: PageParams) -> Page[AgentUpgrade]:
    query = select(AgentUpgrade)
    query = projects.in_visible(query, AgentUpgrade.project_pk, caller)
    return await keyset_page(db, query, AgentUpgrade.pk, page)


async def start_upgrade(
    ctx: ServerContext, db: AsyncSession, caller: Caller, body: UpgradeIn
) -> AgentUpgrade:
    """The rollout row (the runner drives it, :mod:`.rollout`) and its event."""
    upgrade = await create_upgrade(db, caller, body, ctx.settings.agent_upgrade_deadline)
    ctx.events.record(
        "agent.upgrade_started",
        upgrade.project_pk,
        f"agent upgrade to {upgrade.version} of {len(upgrade.devices)} device(s) by {caller.name}",
        actor=caller.name,
    )
    return upgrade


async def upgrade_out(db: AsyncSession, upgrade: AgentUpgrade) -> UpgradeOut:
    names = await projects.names(db, {upgrade.project_pk})
    counts: dict[str, int] = {}
    for entry in upgrade.devices:
        counts[entry["state"]] = counts.get(entry["state"], 0) + 1
    return UpgradeOut(
        id=upgrade.id,
        project=names[upgrade.project_pk].name if upgrade.project_pk in names else "",
        version=upgrade.version,
        state=upgrade.state,
        max_parallel=upgrade.max_parallel,
        deadline=upgrade.deadline,
        error=upgrade.error,
        device_counts=counts,
        devices=[
            UpgradeDeviceOut(
                device=e["id"], name=e["name"], state=e["state"], error=e["error"], batch=e["batch"]
            )
            for e in upgrade.devices
        ],
        created_at=upgrade.created_at,
        created_by=upgrade.created_by,
    )
