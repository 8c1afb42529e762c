"""Saving an instance's service as a new application version (issue 21, part D).

``POST /instances/{id}/save {"service", "as": "APP:VERSION", "registry"?}``:

1. checks, all before anything happens: the caller owns the instance (a user it
   is only shared with may open it, not publish it: 403) and has the developer
   role; APP is an app of the instance's project or a new name there; VERSION
   is new; the service is one of the instance's; the registry is the project's
   (the one named, else its only one) and has a login;
2. opens a ``save`` stream to the instance's device (:mod:`edgefleet.agent.saves`)
   with the registry login (the same one pulls use), so an offline device or a
   missing container is an answer to the request, not a later failure;
3. in a task, relays the device's progress into a :class:`SaveRun` and, when the
   push names its digest, records APP:VERSION: the parent version's spec with
   that service's image replaced by ``host/project/app@sha256:…``. A new APP is
   launchable like its parent.

Runs live in this replica's memory (kept: ``--instance-saves-kept``); the
version they record is the durable result.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.applications import service as applications
from edgefleet.server.applications.contexts import CONTEXT_KEY
from edgefleet.server.applications.tables import Application, AppVersion
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import ApiError, Conflict, Forbidden, Invalid, NotFound
from edgefleet.server.instances.schemas import SaveIn, SaveOut, SaveProgress, SaveTarget
from edgefleet.server.instances.service import STOPPED, job_of, launchable_of
from edgefleet.server.instances.tables import Instance, Launchable
from edgefleet.server.jobs.tables import JobDevice
from edgefleet.server.projects import service as projects
from edgefleet.server.registries.tables import RegistryCredential
from edgefleet.wire.mux import Stream, StreamError
from edgefleet.wire.saves import RegistryLogin, SaveEvent, SaveRequest

_REPO_CHARS = re.compile(r"[^a-z0-9]+")
_RUNS: dict[str, SaveRun] = {}  # this replica's saves, by id (ids are unique)


@dataclass
class SaveRun:
    """One save under way in this replica: its fixed target and its progress."""

    target: SaveTarget
    repository: str
    project_pk: int
    state: str = "pending"
    status: str = ""
    image: str | None = None
    error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    layers: dict[str, tuple[int, int, bool]] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None

    def apply(self, event: SaveEvent) -> None:
        """One progress event from the device: per-layer bytes and done-ness."""
        if event.status:
            self.status = event.status
        if event.layer:
            current, total, done = self.layers.get(event.layer, (0, 0, False))
            lowered = event.status.lower()
            done = done or lowered.startswith(("pushed", "layer already exists", "mounted"))
            self.layers[event.layer] = (
                event.current if event.current is not None else current,
                event.total if event.total is not None else total,
                done,
            )

    def finish(self, error: str | None = None) -> None:
        self.state = "failed" if error else "done"
        self.error = error
        self.finished_at = utcnow()

    def out(self) -> SaveOut:
        done_bytes = sum(t if d and t else c for c, t, d in self.layers.values())
        return SaveOut(
            **dict(self.target),
            state=self.state,
            status=self.status,
            progress=SaveProgress(
                layers_done=sum(1 for _, _, d in self.layers.values() if d),
                layers_total=len(self.layers),
                bytes_done=done_bytes,
                bytes_total=sum(t for _, t, _ in self.layers.values()),
            ),
            image=self.image,
            error=self.error,
            created_at=self.created_at,
            finished_at=self.finished_at,
        )


def find(instance: Instance, save_id: str) -> SaveRun:
    run = _RUNS.get(save_id)
    if run is None or run.target.instance != instance.id:
        raise NotFound(f"instance {instance.id} has no save {save_id!r} on this server")
    return run


async def start(
    ctx: ServerContext, db: AsyncSession, caller: Caller, instance: Instance, body: SaveIn
) -> SaveRun:
    """Check everything, open the device's ``save`` stream, relay it in a task."""
    if caller.user_pk != instance.owner_pk and not caller.is_admin:
        raise Forbidden(f"only the owner of instance {instance.id} may save it")
    caller.require(instance.project_pk, Permission.MANAGE_APPS, f"instance {instance.id}")
    job = await job_of(db, instance)
    if job.state in STOPPED:
        raise Conflict(f"instance {instance.id} is stopped: there is no container to save")
    parent = await db.scalar(select(AppVersion).where(AppVersion.pk == job.version_pk))
    assert parent is not None  # a job's version row goes with it
    services = (parent.spec or {}).get("services") or {}
    if body.service not in services:
        raise Invalid(
            f"service: instance {instance.id} has no service {body.service!r} "
            f"(it has {', '.join(sorted(services)) or 'none'})",
            field="service",
        )
    app_name, version = body.as_.split(":", 1)
    target = await _target_app(db, instance.project_pk, app_name)
    if target is not None:
        taken = await db.scalar(
            select(AppVersion.pk).where(
                AppVersion.application_pk == target.pk, AppVersion.version == version
            )
        )
        if taken is not None:
            raise Conflict(
                f"as: {app_name}:{version} already exists; pick a new version", field="as"
            )
    busy = [
        r for r in _RUNS.values()
        if r.project_pk == instance.project_pk
        and (r.target.app, r.target.version) == (app_name, version)
        and r.state not in ("done", "failed")
    ]  # fmt: skip
    if busy:
        raise Conflict(
            f"as: {app_name}:{version} is being saved already ({busy[0].target.id})", field="as"
        )
    host, login = await _registry(ctx, db, instance.project_pk, body.registry)
    device = await db.scalar(
        select(Device)
        .join(JobDevice, JobDevice.device_pk == Device.pk)
        .where(JobDevice.job_pk == job.pk, JobDevice.assigned.is_(True))
        .order_by(Device.pk)
    )
    if device is None:
        raise Conflict(f"instance {instance.id} is on no device")
    project = (await projects.names(db, {instance.project_pk}))[instance.project_pk]
    repository = "/".join(
        [host]
        + [_REPO_CHARS.sub("-", p.lower()).strip("-") or "x" for p in (project.name, app_name)]
    )
    request = SaveRequest(
        job=job.id,
        service=body.service,
        repository=repository,
        tag=re.sub(r"[^A-Za-z0-9_.-]", "-", version),
        auth=login,
    )
    stream = await ctx.hub.open_stream(device.id, request.model_dump(), timeout=30)
    run = SaveRun(
        target=SaveTarget(
            id=new_id("s"),
            instance=instance.id,
            service=body.service,
            app=app_name,
            version=version,
            registry=host,
            device=device.id,
        ),
        repository=repository,
        project_pk=instance.project_pk,
        state="pushing",
    )
    _keep(ctx, run)
    run.task = asyncio.create_task(
        _relay(ctx, caller, run, stream, parent.pk, job.application_pk),
        name=f"save-{run.target.id}",
    )
    ctx.events.record(
        "instance.save",
        instance.project_pk,
        f"{caller.name} saves service {body.service} of instance {instance.id} "
        f"as {app_name}:{version} ({repository})",
        job_id=job.id,
        actor=caller.name,
    )
    return run


async def _target_app(db: AsyncSession, project_pk: int, ref: str) -> Application | None:
    """The app APP names in the instance's project; None for a new name there.
    An app id of another project is refused: saving never writes across projects."""
    found = await db.scalar(
        select(Application).where(
            Application.project_pk == project_pk,
            (Application.name == ref) | (Application.id == ref),
        )
    )
    if found is not None:
        return found
    elsewhere = await db.scalar(select(Application.pk).where(Application.id == ref))
    if elsewhere is not None:
        raise Invalid(
            f"as: application {ref!r} is not in this instance's project; an instance is "
            "saved only into its own project",
            field="as",
        )
    return None


async def _registry(
    ctx: ServerContext, db: AsyncSession, project_pk: int, wanted: str | None
) -> tuple[str, RegistryLogin]:
    hosts = list(
        await db.scalars(
            select(RegistryCredential.host)
            .where(RegistryCredential.project_pk == project_pk)
            .order_by(RegistryCredential.host)
        )
    )
    if wanted is not None:
        chosen = wanted.strip().lower().removeprefix("https://").removeprefix("http://")
        if chosen not in hosts:
            raise Invalid(
                f"registry: the project has no registry {wanted!r} "
                f"(it has: {', '.join(hosts) or 'none'}; add one with `edgefleet registries add`)",
                field="registry",
            )
    elif len(hosts) == 1:
        chosen = hosts[0]
    else:
        raise Invalid(
            "registry: "
            + (
                f"the project has several registries ({', '.join(hosts)}); name one"
                if hosts
                else "the project has no registry to push to; add one with "
                "`edgefleet registries add`"
            ),
            field="registry",
        )
    logins: dict[int, dict[str, dict[str, str]]] = await ctx.registry_auth(db, {project_pk})
    login = logins.get(project_pk, {}).get(chosen)
    if login is None:
        raise Invalid(f"registry: the login for {chosen} cannot be opened", field="registry")
    return chosen, RegistryLogin.model_validate(login)


def _keep(ctx: ServerContext, run: SaveRun) -> None:
    """Remember the run; forget the oldest finished ones past the limit."""
    _RUNS[run.target.id] = run
    finished = [k for k, r in _RUNS.items() if r.state in ("done", "failed")]
    for key in finished[: max(0, len(_RUNS) - ctx.settings.instance_saves_kept)]:
        del _RUNS[key]


async def _relay(
    ctx: ServerContext,
    caller: Caller,
    run: SaveRun,
    stream: Stream,
    parent_pk: int,
    parent_app_pk: int,
) -> None:
    digest: str | None = None
    error: str | None = None
    try:
        async with asyncio.timeout(ctx.settings.instance_save_timeout):
            while (chunk := await stream.recv()) is not None:
                event = SaveEvent.model_validate_json(chunk)
                run.apply(event)
                if event.done:
                    digest, error = event.digest, event.error
        if digest is None and error is None:
            error = "the device closed the save without a result"
    except TimeoutError:
        error = f"timed out after --instance-save-timeout {ctx.settings.instance_save_timeout} s"
    except StreamError as exc:
        error = f"the device went away while saving: {exc}"
    except ValidationError as exc:
        error = f"the device sent a malformed progress event: {exc.errors()[0]['msg']}"
    if not stream.closed:
        await stream.reset(error or "done")
    if error is None and digest is not None:
        run.state = "recording"
        run.image = f"{run.repository}@{digest}"
        try:
            async with ctx.session() as db:
                await _record(ctx, db, caller, run, parent_pk, parent_app_pk)
        except ApiError as exc:
            error = f"pushed {run.image}, but the version was not recorded: {exc.message}"
    run.finish(error)
    aim = run.target
    ctx.events.record(
        "instance.saved" if error is None else "instance.save_failed",
        run.project_pk,
        f"save {aim.id} of instance {aim.instance} as {aim.app}:{aim.version}: "
        + (f"recorded ({run.image})" if error is None else error),
        actor=caller.name,
    )


async def _record(
    ctx: ServerContext,
    db: AsyncSession,
    caller: Caller,
    run: SaveRun,
    parent_pk: int,
    parent_app_pk: int,
) -> None:
    """APP:VERSION = the parent's spec with the saved service's image pinned by digest."""
    parent = await db.scalar(select(AppVersion).where(AppVersion.pk == parent_pk))
    if parent is None:
        raise NotFound("the instance's application version was deleted meanwhile")
    raw: dict[str, Any] = {k: v for k, v in (parent.spec or {}).items() if k != CONTEXT_KEY}
    services = dict(raw.get("services") or {})
    service = {k: v for k, v in dict(services[run.target.service]).items() if k != "build"}
    service["image"] = run.image
    if service.get("pull_policy") in ("never", "build"):
        service["pull_policy"] = "missing"
    services[run.target.service] = service
    raw["services"] = services
    checked, warnings = await applications.check_source(ctx.limits, raw, None)
    target = await _target_app(db, run.project_pk, run.target.app)
    if target is None:
        project = (await projects.names(db, {run.project_pk}))[run.project_pk]
        target = await applications.create(
            db, caller, project, name=run.target.app,
            description=f"saved from instance {run.target.instance}",
            version=run.target.version, raw=checked, text=None, warnings=warnings,
        )  # fmt: skip
        await _launchable_like(db, parent_app_pk, target)
    else:
        await applications.add_version(
            db,
            caller,
            target,
            version=run.target.version,
            raw=checked,
            text=None,
            warnings=warnings,
        )


async def _launchable_like(db: AsyncSession, parent_app_pk: int, app: Application) -> None:
    parent = await db.scalar(select(Application).where(Application.pk == parent_app_pk))
    marked = await launchable_of(db, parent) if parent is not None else None
    if marked is not None:
        db.add(Launchable(application_pk=app.pk, idle_timeout=marked.idle_timeout))
        await db.commit()
