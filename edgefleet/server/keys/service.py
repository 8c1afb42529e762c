"""Provisioning keys: how devices join a project."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth import secrets
from edgefleet.server.auth.accounts import expiry
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.errors import Invalid, NotFound, Unauthorized
from edgefleet.server.events import audit
from edgefleet.server.keys.schemas import KeyCreated, KeyIn, KeyOut
from edgefleet.server.keys.tables import ProvisioningKey
from edgefleet.server.pagination import Page, PageParams, keyset_page
from edgefleet.server.projects import service as projects
from edgefleet.server.projects.tables import Project


async def create(
    db: AsyncSession,
    caller: Caller,
    project: Project,
    *,
    name: str,
    labels: dict[str, str],
    expires_at: datetime | None,
    max_uses: int | None,
) -> tuple[ProvisioningKey, str]:
    caller.require(project.pk, Permission.MANAGE_KEYS, f"project {project.name!r}")
    if expires_at is not None and expires_at <= utcnow():
        raise Invalid("expires_at is in the past", field="expires_at")
    secret = secrets.generate(secrets.KEY_PREFIX)
    key = ProvisioningKey(
        id=new_id("k"),
        project_pk=project.pk,
        name=name,
        key_hash=secrets.digest(secret),
        prefix=secrets.display_prefix(secret),
        labels=labels,
        expires_at=expires_at,
        max_uses=max_uses,
        created_by=caller.name,
    )
    db.add(key)
    what = f"{caller.name} created provisioning key {key.prefix}… for project {project.name}"
    audit.record(db, "key.created", project.pk, what, actor=caller.name, data={"key": key.id})
    await db.commit()
    return key, secret


async def create_from(
    ctx: ServerContext, db: AsyncSession, caller: Caller, body: KeyIn
) -> KeyCreated:
    """``POST /provisioning-keys``: the key, its secret (shown once) and the command
    that enrolls a device with it."""
    project = await projects.find(db, caller, body.project)
    expires = expiry(body.expires_at, body.expires_in)
    key, secret = await create(
        db,
        caller,
        project,
        name=body.name,
        labels=body.labels,
        expires_at=expires,
        max_uses=body.max_uses,
    )
    out = await key_out(db, key)
    command = (
        f"edgefleet agent --server {ctx.settings.resolved_public_url()} "
        f"--provisioning-key {secret} --state-dir /var/lib/edgefleet"
    )
    return KeyCreated(**out.model_dump(), key=secret, command=command)


async def key_out(db: AsyncSession, key: ProvisioningKey) -> KeyOut:
    project = (await projects.names(db, {key.project_pk}))[key.project_pk]
    return KeyOut(
        id=key.id,
        name=key.name,
        project=project.name,
        project_id=project.id,
        prefix=key.prefix,
        labels=key.labels,
        created_at=key.created_at,
        created_by=key.created_by,
        expires_at=key.expires_at,
        max_uses=key.max_uses,
        uses=key.uses,
        revoked_at=key.revoked_at,
    )


async def listing(
    db: AsyncSession, caller: Caller, page: PageParams, project: str | None = None
) -> Page[ProvisioningKey]:
    """The keys of the caller's projects (or of ``project``), oldest first."""
    query = select(ProvisioningKey)
    query = projects.in_visible(query, ProvisioningKey.project_pk, caller)
    if project:
        project_pk = (await projects.find(db, caller, project)).pk
        query = query.where(ProvisioningKey.project_pk == project_pk)
    return await keyset_page(db, query, ProvisioningKey.pk, page)


async def find(db: AsyncSession, caller: Caller, key_id: str) -> ProvisioningKey:
    key = await db.scalar(select(ProvisioningKey).where(ProvisioningKey.id == key_id))
    if key is None or not caller.can(key.project_pk, Permission.READ):
        raise NotFound(f"provisioning key {key_id!r} not found")
    return key


async def revoke(db: AsyncSession, caller: Caller, key: ProvisioningKey) -> ProvisioningKey:
    caller.require(key.project_pk, Permission.MANAGE_KEYS, "provisioning key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        what = f"{caller.name} revoked provisioning key {key.prefix}…"
        audit.record(
            db, "key.revoked", key.project_pk, what, actor=caller.name, data={"key": key.id}
        )
        await db.commit()
    return key


def refusal(key: ProvisioningKey | None) -> Unauthorized | None:
    """Why ``key`` (looked up by an agent's secret) cannot enroll a device, if it
    cannot: unknown, revoked or expired. Its use count is checked when taken."""
    if key is None:
        return Unauthorized("provisioning key is not valid")
    if key.revoked_at is not None:
        return Unauthorized("provisioning key was revoked")
    if key.expires_at is not None and key.expires_at <= utcnow():
        return Unauthorized(f"provisioning key expired at {key.expires_at.isoformat()}")
    return None


def used_up(key: ProvisioningKey) -> Unauthorized:
    return Unauthorized(f"provisioning key was already used {key.max_uses} time(s), its limit")


async def by_secret(
    db: AsyncSession, presented: list[str]
) -> dict[str, tuple[ProvisioningKey, Project]]:
    """The keys that the ``presented`` secrets name, each with its project, by
    secret: one query for a group of enrollments (the project came in a second
    query per group before); a secret naming no key is absent."""
    digests = {secrets.digest(secret): secret for secret in presented}
    rows = await db.execute(
        select(ProvisioningKey, Project)
        .join(Project, Project.pk == ProvisioningKey.project_pk)
        .where(ProvisioningKey.key_hash.in_(list(digests)))
    )
    return {digests[key.key_hash]: (key, project) for key, project in rows}


async def take(db: AsyncSession, key: ProvisioningKey, count: int, *, seen: int) -> bool:
    """Count ``count`` uses of ``key`` at once, decided on its use count being
    ``seen``: false (and nothing counted) if another transaction counted uses
    since. A key with no limit takes any count. The caller commits."""
    query = update(ProvisioningKey).where(ProvisioningKey.pk == key.pk)
    if key.max_uses is not None:
        query = query.where(ProvisioningKey.uses == seen)
    result = await db.execute(query.values(uses=ProvisioningKey.uses + count))
    return bool(result.rowcount)  # type: ignore[attr-defined]
