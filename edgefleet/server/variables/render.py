"""Variables, secrets and configs laid into a device's desired state.

``ctx.workload_config`` is an instance of :class:`WorkloadConfig` (built by
:mod:`edgefleet.server.assembly`); the
desired-state builder (:mod:`edgefleet.server.jobs.desired`) calls it with the
assignments it built from each job's stored spec, and it rewrites, per device:

    job.resolved (job environment only)
      ── variables (project < selector < device, :mod:`.precedence`)
         non-empty? parse the version again with job env + variables
      ── secrets: each service's secret gets the secret's version; the value,
         opened with the server's key, is sealed to the device's X25519 key
         (:mod:`edgefleet.wire.sealed`) into ``JobAssignment.secrets``
      ── configs: each service's config gets its content (inline, or the
         variable of that name as this device sees it)

Versions and contents are part of the spec, hence of the job's revision: a
rotated secret or changed variable redeploys the jobs it reaches, no others.
Parses are cached per (version, job environment, variables), across calls and
bounded, so 1,000 devices that see the same variables cost one parse.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.applications.tables import AppVersion
from edgefleet.server.context import ServerContext, WorkloadRender
from edgefleet.server.devices.tables import Device
from edgefleet.server.jobs import desired
from edgefleet.server.jobs.desired import resend_project as resend_project  # its callers' name
from edgefleet.server.jobs.tables import Job
from edgefleet.server.registries.crypto import SecretBox, SecretKeyError
from edgefleet.server.rollouts import pins as rollout_pins
from edgefleet.server.secrets.tables import ProjectSecret
from edgefleet.server.variables.precedence import (
    ScopedValue,
    environment,
    overlay,
    service_environment,
)
from edgefleet.server.variables.tables import DeviceVariable, ProjectVariable
from edgefleet.spec import compose, work
from edgefleet.spec.model import AppSpec
from edgefleet.wire.messages import DesiredState
from edgefleet.wire.sealed import SealError, associated_data, seal
from edgefleet.wire.workload import JobAssignment, SealedSecret

log = logging.getLogger(__name__)

States = dict[int, tuple[str, DesiredState]]
ParseKey = tuple[int, frozenset[tuple[str, str]], frozenset[tuple[str, str]]]
PARSED_KEPT = 4096


class WorkloadConfig:
    """``ctx.workload_config``: the render step and the box that seals values at rest."""

    def __init__(self, ctx: ServerContext, box: SecretBox) -> None:
        self.ctx = ctx
        self.box = box
        # (version pk, job environment, variables) -> spec: versions are immutable,
        # so an entry never goes stale; the oldest go first past PARSED_KEPT.
        self._parsed: OrderedDict[ParseKey, AppSpec | None] = OrderedDict()

    async def _cached(
        self, version: AppVersion, job_env: dict[str, str], over: dict[str, str], job_id: str
    ) -> AppSpec | None:
        key = (version.pk, frozenset(job_env.items()), frozenset(over.items()))
        if key in self._parsed:
            self._parsed.move_to_end(key)
            return self._parsed[key]
        spec = await self._parse(version, job_env, over, job_id)
        self._parsed[key] = spec
        while len(self._parsed) > PARSED_KEPT:
            self._parsed.popitem(last=False)
        return spec

    async def __call__(self, db: AsyncSession, states: States, held: bool = True) -> None:
        """Lay variables, secrets and configs over ``states``; ``held=False``
        ignores what configuration rollouts hold back (what the current values
        alone would give, for :mod:`edgefleet.server.rollouts.config`)."""
        pairs = [(pk, a) for pk, (_, state) in states.items() for a in state.jobs]
        if not pairs:
            return
        job_ids = {a.job_id for _, a in pairs}
        jobs = {job.id: job for job in await db.scalars(select(Job).where(Job.id.in_(job_ids)))}
        # The version each device is given: a staged rollout may hold some back.
        versions = {
            (row.application_pk, row.version): row
            for row in await db.scalars(
                select(AppVersion).where(
                    AppVersion.application_pk.in_({j.application_pk for j in jobs.values()}),
                    AppVersion.version.in_({a.version for _, a in pairs}),
                )
            )
        }
        project_pks = {job.project_pk for job in jobs.values()}
        project_vars: dict[int, list[ScopedValue]] = defaultdict(list)
        for row in await db.scalars(
            select(ProjectVariable).where(ProjectVariable.project_pk.in_(project_pks))
        ):
            project_vars[row.project_pk].append(ScopedValue(row.name, row.value, row.selector))
        device_pks = set(states)
        device_vars: dict[int, dict[str, str]] = defaultdict(dict)
        for own in await db.scalars(
            select(DeviceVariable).where(DeviceVariable.device_pk.in_(device_pks))
        ):
            device_vars[own.device_pk][own.name] = own.value
        devices = {
            pk: (labels or {}, public_key)
            for pk, labels, public_key in (
                await db.execute(
                    select(Device.pk, Device.labels, Device.public_key).where(
                        Device.pk.in_(device_pks)
                    )
                )
            ).all()
        }
        secrets: dict[tuple[int, str], ProjectSecret] = {}
        if any(a.spec.secrets for _, a in pairs):
            for secret in await db.scalars(
                select(ProjectSecret).where(ProjectSecret.project_pk.in_(project_pks))
            ):
                secrets[(secret.project_pk, secret.name)] = secret
        # A configuration rollout keeps the devices it holds back on the previous inputs.
        staged = rollout_pins.Pins()
        if held:
            staged = await rollout_pins.load(db, {job.pk for job in jobs.values()})
        for device_pk, assignment in pairs:
            if assignment.job_id not in jobs:
                continue
            job = jobs[assignment.job_id]
            labels, public_key = devices.get(device_pk, ({}, None))
            device_id = states[device_pk][0]
            scope, rows = project_vars.get(job.project_pk, []), secrets
            mine = device_vars[device_pk]
            kept = staged.held(job.pk, device_id)
            if kept is not None:
                scope, mine = kept.project_scope(scope), kept.device_scope(device_id, mine)
                rows = kept.secret_rows(job.project_pk, secrets)
            over = overlay(scope, mine, labels)
            if not over and not assignment.spec.secrets and not assignment.spec.configs:
                continue
            env = environment(job.environment or {}, over)
            spec = assignment.spec
            version = versions.get((job.application_pk, assignment.version))
            if over and version is not None:
                parsed = await self._cached(version, job.environment or {}, over, job.id)
                spec = parsed or spec
            spec = spec.model_copy(deep=True)  # shared with other devices
            self._fill(assignment, spec, env, device_id, job.project_pk, public_key, rows)
            assignment.spec = spec

    async def _parse(
        self, version: AppVersion, job_env: dict[str, str], over: dict[str, str], job_id: str
    ) -> AppSpec | None:
        """The version interpolated with job environment + variables (in a parse
        worker, within the Compose budget); None (and the job's own spec is
        kept) when the values make the file invalid or too large."""
        env = environment(job_env, over)
        source: str | dict[str, Any] = (
            version.compose if version.compose is not None else version.spec
        )
        text = version.compose or ""
        grown = sum(text.count(name) * len(value) for name, value in env.items() if name)
        if len(text) + grown > self.ctx.limits.compose_budget.max_bytes:
            log.warning("job %s: variables not applied: the file would grow too large", job_id)
            return None
        try:
            spec = await self.ctx.limits.parse(work.resolve, source, env)
        except compose.SpecInvalid as exc:
            first = exc.findings[0].message if exc.findings else "invalid"
            log.warning("job %s: variables not applied: %s", job_id, first)
            return None
        for service in spec.services.values():
            service.environment = service_environment(service.environment, job_env, over)
        return spec

    def _fill(
        self,
        assignment: JobAssignment,
        spec: AppSpec,
        env: dict[str, str],
        device_id: str,
        project_pk: int,
        public_key: str | None,
        secrets: dict[tuple[int, str], ProjectSecret],
    ) -> None:
        assignment.secrets = {}
        for service in spec.services.values():
            for ref in service.configs:
                source = spec.configs.get(ref.source)
                if source is not None:
                    ref.content = env.get(source.name or ref.source) if source.external else (
                        source.content
                    )  # fmt: skip
            for ref in service.secrets:
                source = spec.secrets.get(ref.source)
                name = (source.name if source else None) or ref.source
                row = secrets.get((project_pk, name))
                if row is None:
                    continue  # deleted since the job was made: the agent says so
                ref.version = row.version
                if name in assignment.secrets or not public_key:
                    continue
                sealed = self._seal(row, public_key, device_id, assignment.job_id)
                if sealed is not None:
                    assignment.secrets[name] = SealedSecret(version=row.version, sealed=sealed)

    def _seal(self, row: ProjectSecret, public_key: str, device_id: str, job_id: str) -> str | None:
        try:
            value = self.box.open(row.sealed)
            aad = associated_data(device_id, job_id, row.name, row.version)
            return seal(public_key, value.encode(), aad)
        except (SecretKeyError, SealError) as exc:
            log.error("secret %s for device %s: %s", row.name, device_id, exc)
            return None


def hook(ctx: ServerContext) -> WorkloadRender:
    return ctx.workload_config


async def resend_device(ctx: ServerContext, db: AsyncSession, device_pk: int) -> None:
    await desired.bump(db, [device_pk])
    await db.commit()
    await desired.push(ctx, [device_pk])
