"""Applications and their immutable versions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.applications import contexts
from edgefleet.server.applications.contexts import CONTEXT_KEY
from edgefleet.server.applications.schemas import ApplicationIn, VersionIn
from edgefleet.server.applications.tables import Application, AppVersion
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.data.objects import open_store
from edgefleet.server.db.base import new_id
from edgefleet.server.errors import Conflict, Invalid, NotFound
from edgefleet.server.limits import Limits
from edgefleet.server.pagination import Page, PageParams, keyset_page
from edgefleet.server.projects import service as projects
from edgefleet.server.projects.tables import Project
from edgefleet.spec import compose, work
from edgefleet.spec.findings import Finding
from edgefleet.spec.model import AppSpec


def describe(finding: compose.Finding) -> str:
    where = f"line {finding.line}: " if finding.line else ""
    key = f"{finding.key}: " if finding.key else ""
    return f"{where}{key}{finding.message}"


async def check_source(
    limits: Limits, spec: dict[str, Any] | None, text: str | None, context: str | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Validate at upload, in a worker process within the server's Compose
    budget; returns the parsed source and the warnings, or 422 with every
    finding (nothing is stored). The text itself is what gets stored."""
    field = "compose" if text is not None else "spec"
    source: str | dict[str, Any] = text if text is not None else (spec or {})

    try:
        raw, warnings = await limits.parse(work.check, source, context is not None)
    except compose.SpecInvalid as exc:
        raise _refused("invalid application spec", field, exc) from exc
    if context is not None:  # kept with the version: its builds use this context
        raw = {**raw, CONTEXT_KEY: context}
    return raw, [w.to_dict() for w in warnings]


async def validate_source(
    limits: Limits, source: str | dict[str, Any]
) -> tuple[list[Finding], list[str]]:
    """Every finding and the services, for ``POST /applications/validate``. A
    file that cannot even be read within the budget (a YAML bomb, a
    non-printable character, broken syntax) is refused with 422 naming the
    problem, like an upload; a readable one answers its findings."""

    try:
        return await limits.parse(work.validate, source)
    except compose.SpecInvalid as exc:
        raise _refused("the file cannot be read", "compose", exc) from exc


def _refused(what: str, field: str, exc: compose.SpecInvalid) -> Invalid:
    first = next((f for f in exc.findings if f.level == "error"), None)
    message = describe(first) if first else str(exc)
    return Invalid(f"{what}: {message}", field=field, findings=[f.to_dict() for f in exc.findings])


def _check_expansion(limits: Limits, version: AppVersion, environment: dict[str, str]) -> None:
    """A job's environment is substituted into every ``${VAR}`` of the file and
    added to every service: a 1 MiB value used a thousand times would be a
    bomb of its own. Refuse when the worst case passes the Compose budget."""
    budget = limits.compose_budget.max_bytes
    text = version.compose or ""
    uses = sum(text.count(name) * len(value) for name, value in environment.items() if name)
    env_bytes = sum(len(k) + len(v) for k, v in environment.items())
    services = len((version.spec or {}).get("services") or {}) or 1
    if len(text) + uses > budget or env_bytes * services > budget:
        raise Invalid(
            f"the environment's values, substituted into version {version.version} and given "
            f"to its {services} service(s), could expand past {budget} bytes "
            "(compose_max_expanded_bytes); use shorter values",
            field="environment",
        )


async def resolve(limits: Limits, version: AppVersion, environment: dict[str, str]) -> AppSpec:
    """The spec as one job runs it: interpolated with the job's environment,
    which also overrides every service's environment. Parsed in a worker
    thread within the Compose budget."""
    _check_expansion(limits, version, environment)
    stored = dict(version.spec or {})
    context = stored.pop(CONTEXT_KEY, None)
    source: str | dict[str, Any] = version.compose if version.compose is not None else stored

    try:
        spec = await limits.parse(work.resolve, source, environment, context is not None)
    except compose.SpecInvalid as exc:
        raise _refused(
            f"version {version.version} cannot run with this environment", "environment", exc
        ) from exc
    for service in spec.services.values():
        service.environment.update(environment)
        if service.build is not None:
            service.build.digest = context  # what devices fetch and build
    return spec


async def find(
    db: AsyncSession, caller: Caller, ref: str, project_pk: int | None = None
) -> Application:
    query = select(Application).where((Application.id == ref) | (Application.name == ref))
    if project_pk is not None:
        query = query.where(Application.project_pk == project_pk)
    query = projects.in_visible(query, Application.project_pk, caller)
    rows = list(await db.scalars(query.limit(3)))
    exact = [a for a in rows if a.id == ref]
    if exact:
        return exact[0]
    if not rows:
        raise NotFound(f"application {ref!r} not found", field="application")
    if len(rows) > 1:
        raise Conflict(
            f"application name {ref!r} exists in several projects; use its id or ?project="
        )
    return rows[0]


async def listing(
    db: AsyncSession, caller: Caller, page: PageParams, project: str | None = None
) -> Page[Application]:
    """The applications of the caller's projects (or of ``project``), oldest first."""
    query = select(Application)
    query = projects.in_visible(query, Application.project_pk, caller)
    if project:
        query = query.where(Application.project_pk == (await projects.find(db, caller, project)).pk)
    return await keyset_page(db, query, Application.pk, page)


async def find_version(db: AsyncSession, app: Application, version: str) -> AppVersion:
    found = await db.scalar(
        select(AppVersion).where(
            AppVersion.application_pk == app.pk,
            (AppVersion.version == version) | (AppVersion.id == version),
        )
    )
    if found is None:
        raise NotFound(f"application {app.name} has no version {version!r}", field="version")
    return found


async def versions(db: AsyncSession, app: Application) -> list[AppVersion]:
    return list(
        await db.scalars(
            select(AppVersion).where(AppVersion.application_pk == app.pk).order_by(AppVersion.pk)
        )
    )


async def create(
    db: AsyncSession,
    caller: Caller,
    project: Project,
    *,
    name: str,
    description: str,
    version: str,
    raw: dict[str, Any],
    text: str | None,
    warnings: list[dict[str, Any]],
) -> Application:
    caller.require(project.pk, Permission.MANAGE_APPS, f"project {project.name!r}")
    exists = await db.scalar(
        select(Application.pk).where(Application.project_pk == project.pk, Application.name == name)
    )
    if exists is not None:
        raise Conflict(
            f"application {name!r} already exists in {project.name}; "
            f"add a version with POST /applications/{name}/versions",
            field="name",
        )
    app = Application(id=new_id("a"), project_pk=project.pk, name=name, description=description)
    db.add(app)
    await db.flush()
    db.add(_version_row(app, version, raw, text, warnings, caller))
    await db.commit()
    return app


async def _checked_source(
    ctx: ServerContext, project_pk: int, body: ApplicationIn | VersionIn
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The spec a request carries, checked; its build context must be one the
    project uploaded."""
    if body.context is not None:
        store = open_store(ctx.settings.object_store, ctx.settings.data_dir)
        await contexts.require(store, project_pk, body.context)
    return await check_source(ctx.limits, body.spec, body.compose, body.context)


async def create_from(
    ctx: ServerContext, db: AsyncSession, caller: Caller, body: ApplicationIn
) -> Application:
    """``POST /applications``: the role first (parsing a Compose file costs a worker,
    and a refusal must not depend on what the file says), then the spec, the row
    and the event."""
    project = await projects.find(db, caller, body.project)
    caller.require(project.pk, Permission.MANAGE_APPS, f"project {project.name!r}")
    raw, warnings = await _checked_source(ctx, project.pk, body)
    app = await create(
        db,
        caller,
        project,
        name=body.name,
        description=body.description,
        version=body.version,
        raw=raw,
        text=body.compose,
        warnings=warnings,
    )
    ctx.events.record(
        "application.created",
        project.pk,
        f"application {app.name} version {body.version} created by {caller.name}",
        actor=caller.name,
    )
    return app


async def add_version_from(
    ctx: ServerContext, db: AsyncSession, caller: Caller, app: Application, body: VersionIn
) -> AppVersion:
    """``POST /applications/{app}/versions``: as :func:`create_from`, for a new version."""
    caller.require(app.project_pk, Permission.MANAGE_APPS, f"application {app.name!r}")
    raw, warnings = await _checked_source(ctx, app.project_pk, body)
    row = await add_version(
        db, caller, app, version=body.version, raw=raw, text=body.compose, warnings=warnings
    )
    ctx.events.record(
        "application.version",
        app.project_pk,
        f"application {app.name} version {body.version} added by {caller.name}",
        actor=caller.name,
    )
    return row


def _version_row(
    app: Application,
    version: str,
    raw: dict[str, Any],
    text: str | None,
    warnings: list[dict[str, Any]],
    caller: Caller,
) -> AppVersion:
    return AppVersion(
        id=new_id("v"),
        application_pk=app.pk,
        version=version,
        compose=text,
        spec=raw,
        warnings=warnings,
        created_by=caller.name,
    )


async def add_version(
    db: AsyncSession,
    caller: Caller,
    app: Application,
    *,
    version: str,
    raw: dict[str, Any],
    text: str | None,
    warnings: list[dict[str, Any]],
) -> AppVersion:
    caller.require(app.project_pk, Permission.MANAGE_APPS, f"application {app.name!r}")
    exists = await db.scalar(
        select(AppVersion.pk).where(
            AppVersion.application_pk == app.pk, AppVersion.version == version
        )
    )
    if exists is not None:
        raise Conflict(
            f"version {version!r} of {app.name} already exists; versions are immutable, "
            "upload a new version",
            field="version",
        )
    row = _version_row(app, version, raw, text, warnings, caller)
    db.add(row)
    await db.commit()
    return row


async def delete(db: AsyncSession, caller: Caller, app: Application) -> None:
    caller.require(app.project_pk, Permission.MANAGE_APPS, f"application {app.name!r}")
    from edgefleet.server.jobs.tables import Job

    active = await db.scalar(
        select(func.count()).where(
            Job.application_pk == app.pk,
            Job.state.not_in(("cancelled", "expired", "completed", "failed")),
        )
    )
    if active:
        raise Conflict(f"application {app.name} has {active} active job(s); cancel them first")
    await db.delete(app)
    await db.commit()
