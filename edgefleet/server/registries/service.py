"""Registry credentials: add (or replace), list, remove, and hand them to agents.

Passwords are sealed with the server's key before they reach the database
and opened only to build a device's desired state, for the jobs of their
project, and only for the registries those jobs' images come from.
Adding or removing a credential re-sends desired state to the devices that
run the project's jobs, so a job that failed to pull tries again at once.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.errors import NotFound
from edgefleet.server.jobs import desired
from edgefleet.server.pagination import Page, PageParams, keyset_page
from edgefleet.server.projects.tables import Project
from edgefleet.server.registries.crypto import SecretBox, SecretKeyError
from edgefleet.server.registries.schemas import RegistryIn
from edgefleet.server.registries.tables import RegistryCredential
from edgefleet.spec.images import normalize_registry

log = logging.getLogger(__name__)

Auth = dict[str, dict[str, str]]


class RegistryAuth:
    """``ctx.registry_auth`` (built by :mod:`edgefleet.server.assembly`): what
    :mod:`edgefleet.server.jobs.desired` calls to fill ``JobAssignment.registry_auth``,
    and the box that seals new passwords."""

    def __init__(self, box: SecretBox) -> None:
        self.box = box

    async def __call__(self, db: AsyncSession, project_pks: set[int]) -> dict[int, Auth]:
        rows = await db.scalars(
            select(RegistryCredential).where(RegistryCredential.project_pk.in_(project_pks))
        )
        found: dict[int, Auth] = {}
        for row in rows:
            try:
                password = self.box.open(row.secret)
            except SecretKeyError as exc:
                log.error("registry %s of project pk %d: %s", row.host, row.project_pk, exc)
                continue
            found.setdefault(row.project_pk, {})[row.host] = {
                "username": row.username,
                "password": password,
                "serveraddress": row.host,
            }
        return found


async def put(
    ctx: ServerContext, db: AsyncSession, caller: Caller, project: Project, body: RegistryIn
) -> tuple[RegistryCredential, bool]:
    """Add the project's credential for a registry, or replace it; True if new."""
    caller.require(project.pk, Permission.MANAGE_REGISTRIES, f"project {project.name!r}")
    secret = ctx.registry_auth.box.seal(body.password.get_secret_value())
    row = await db.scalar(
        select(RegistryCredential).where(
            RegistryCredential.project_pk == project.pk,
            RegistryCredential.host == body.registry,
        )
    )
    created = row is None
    if row is None:
        row = RegistryCredential(
            id=new_id("r"),
            project_pk=project.pk,
            host=body.registry,
            username=body.username,
            secret=secret,
            created_by=caller.name,
        )
        db.add(row)
    else:
        row.username, row.secret, row.updated_at = body.username, secret, utcnow()
    await db.commit()
    ctx.events.record(
        "registry.added" if created else "registry.replaced",
        project.pk,
        f"registry {body.registry}: credentials for {body.username} "
        f"{'added' if created else 'replaced'} by {caller.name}",
        actor=caller.name,
    )
    await desired.resend_project(ctx, db, project.pk)
    return row, created


async def visible(
    db: AsyncSession, caller: Caller, project: Project, page: PageParams
) -> Page[RegistryCredential]:
    caller.require(project.pk, Permission.READ, f"project {project.name!r}")
    query = select(RegistryCredential).where(RegistryCredential.project_pk == project.pk)
    return await keyset_page(db, query, RegistryCredential.pk, page)


async def find(db: AsyncSession, project: Project, ref: str) -> RegistryCredential:
    """By id, or by registry host (any spelling of it)."""
    try:
        host = normalize_registry(ref)
    except ValueError:
        host = ref
    row = await db.scalar(
        select(RegistryCredential).where(
            RegistryCredential.project_pk == project.pk,
            (RegistryCredential.id == ref) | (RegistryCredential.host == host),
        )
    )
    if row is None:
        raise NotFound(f"project {project.name} has no credentials for registry {ref!r}")
    return row


async def remove(
    ctx: ServerContext, db: AsyncSession, caller: Caller, project: Project, row: RegistryCredential
) -> None:
    caller.require(project.pk, Permission.MANAGE_REGISTRIES, f"project {project.name!r}")
    await db.delete(row)
    await db.commit()
    ctx.events.record(
        "registry.removed",
        project.pk,
        f"registry {row.host}: credentials removed by {caller.name}",
        actor=caller.name,
    )
    await desired.resend_project(ctx, db, project.pk)
