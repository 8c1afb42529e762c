"""Project secrets: create, rotate, list, delete, and the check a job makes.

A value is sealed with the server's key (:mod:`..registries.crypto`, the same
key file as registry passwords) before it reaches the database, and opened
only to seal it again to one device (:mod:`.render`). No answer, event or
log line carries it: events name the secret and its version only.
Changing a secret re-sends desired state to the project's devices; only the
jobs whose services use it see a new version, so only they redeploy. A job
with a ``rollout`` block gets the change batch by batch, the devices it holds
back keeping the previous version of the secret (:mod:`..rollouts.config`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.errors import Conflict, Invalid, NotFound
from edgefleet.server.pagination import Page, PageParams, keyset_page
from edgefleet.server.projects.tables import Project
from edgefleet.server.rollouts import config as staged
from edgefleet.server.rollouts import inputs
from edgefleet.server.secrets.schemas import SecretIn, SecretValue
from edgefleet.server.secrets.tables import ProjectSecret
from edgefleet.server.variables import render
from edgefleet.spec.model import AppSpec


def _sealed(ctx: ServerContext, body: SecretValue) -> str:
    value = body.value.get_secret_value()
    limit = ctx.settings.secret_value_max_bytes
    if len(value.encode()) > limit:
        raise Invalid(f"value: larger than {limit} bytes (--secret-value-max-bytes)", field="value")
    box = render.hook(ctx).box
    return box.seal(value)


async def _row(db: AsyncSession, project: Project, name: str) -> ProjectSecret | None:
    return await db.scalar(
        select(ProjectSecret).where(
            ProjectSecret.project_pk == project.pk, ProjectSecret.name == name
        )
    )


async def create(
    ctx: ServerContext, db: AsyncSession, caller: Caller, project: Project, body: SecretIn
) -> ProjectSecret:
    caller.require(project.pk, Permission.MANAGE_SECRETS, f"project {project.name!r}")
    sealed = _sealed(ctx, body)
    if await _row(db, project, body.name) is not None:
        raise Conflict(
            f"project {project.name} already has a secret {body.name!r}: rotate it with "
            f"PUT /projects/{project.name}/secrets/{body.name}",
            field="name",
        )
    row = ProjectSecret(
        id=new_id("s"),
        project_pk=project.pk,
        name=body.name,
        sealed=sealed,
        version=1,
        updated_by=caller.name,
    )
    db.add(row)
    await db.commit()
    _event(ctx, project, row, "created", caller)
    await render.resend_project(ctx, db, project.pk)
    return row


async def rotate(
    ctx: ServerContext,
    db: AsyncSession,
    caller: Caller,
    project: Project,
    name: str,
    body: SecretValue,
) -> tuple[ProjectSecret, bool]:
    """Set a new value (a new version); creates the secret if it is new. True if new."""
    caller.require(project.pk, Permission.MANAGE_SECRETS, f"project {project.name!r}")
    sealed = _sealed(ctx, body)
    row = await _row(db, project, name)
    created = row is None
    snapshot = await staged.before(ctx, db, project.pk)
    version = 0 if row is None else row.version
    held = inputs.secret(name, row, f"secret {name} version {version} -> {version + 1}")
    if row is None:
        row = ProjectSecret(id=new_id("s"), project_pk=project.pk, name=name, version=1)
        db.add(row)
    else:
        row.version += 1
    row.sealed, row.updated_by, row.updated_at = sealed, caller.name, utcnow()
    await db.commit()
    _event(ctx, project, row, "created" if created else "rotated", caller)
    await staged.after(ctx, db, snapshot, held)
    await render.resend_project(ctx, db, project.pk)
    return row, created


def _event(
    ctx: ServerContext, project: Project, row: ProjectSecret, what: str, caller: Caller
) -> None:
    ctx.events.record(
        f"secret.{what}",
        project.pk,
        f"secret {row.name} {what} (version {row.version}) by {caller.name}",
        actor=caller.name,
    )


async def visible(
    db: AsyncSession, caller: Caller, project: Project, page: PageParams
) -> Page[ProjectSecret]:
    caller.require(project.pk, Permission.READ, f"project {project.name!r}")
    query = select(ProjectSecret).where(ProjectSecret.project_pk == project.pk)
    return await keyset_page(db, query, ProjectSecret.pk, page)


async def find(db: AsyncSession, caller: Caller, project: Project, name: str) -> ProjectSecret:
    caller.require(project.pk, Permission.READ, f"project {project.name!r}")
    row = await _row(db, project, name)
    if row is None:
        raise NotFound(f"project {project.name} has no secret {name!r}")
    return row


async def remove(
    ctx: ServerContext, db: AsyncSession, caller: Caller, project: Project, name: str
) -> None:
    """Jobs that use it keep running what they have; a device that has to start
    a service again reports that the secret is gone."""
    caller.require(project.pk, Permission.MANAGE_SECRETS, f"project {project.name!r}")
    row = await find(db, caller, project, name)
    snapshot = await staged.before(ctx, db, project.pk)
    held = inputs.secret(name, row, f"secret {name} deleted (was version {row.version})")
    await db.delete(row)
    await db.commit()
    await staged.after(ctx, db, snapshot, held)
    ctx.events.record(
        "secret.deleted",
        project.pk,
        f"secret {row.name} deleted by {caller.name}",
        actor=caller.name,
    )
    await render.resend_project(ctx, db, project.pk)


async def check_refs(db: AsyncSession, project_pk: int, spec: AppSpec) -> None:
    """A job may use only its own project's secrets: a name the project lacks
    (whether or not another project has it) is a 422 naming it."""
    wanted = {source.name or key for key, source in spec.secrets.items()}
    if not wanted:
        return
    found = set(
        await db.scalars(
            select(ProjectSecret.name).where(
                ProjectSecret.project_pk == project_pk, ProjectSecret.name.in_(wanted)
            )
        )
    )
    missing = sorted(wanted - found)
    if missing:
        project = await db.scalar(select(Project.name).where(Project.pk == project_pk))
        raise Invalid(
            f"secrets: project {project} has no secret "
            + ", ".join(repr(m) for m in missing)
            + ": create it first (edgefleet secrets create NAME)",
            field="secrets",
        )
