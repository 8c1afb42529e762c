"""Carry out a :class:`~edgefleet.agent.changes.plan.Plan` against the runtimes.

Each step that creates something pushes its undo; when a step fails, the
undos run in reverse and the error (in plain words, with the workload's last
output when it exited) is raised as :class:`ChangeFailed`. Retiring the old
revision is always the last step, so a failure never touches it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgefleet.agent.builds import Builds, build_tag
from edgefleet.agent.changes import plan as p
from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.health import HealthTracker
from edgefleet.agent.runtimes.base import (
    ContainerRuntime,
    Runtime,
    RuntimeSet,
    Workload,
    WorkloadFile,
    WorkloadSpec,
    inputs_digest,
    network_name,
    volume_name,
)
from edgefleet.wire.workload import JobAssignment

log = logging.getLogger(__name__)

SETTLE_SECONDS = 2.0
START_TIMEOUT = 120.0

Phase = Callable[[str, str], None]  # (job_id, phase)
# (job_id, service) -> extra env; async, as it may ask the engine (never
# synchronously: a slow engine must not stall the agent's event loop).
EnvHook = Callable[[str, str], Awaitable[dict[str, str]]]
# (assignment, revision, service) -> files written on a tmpfs, to mount read-only.
FileHook = Callable[[JobAssignment, str, str], list[WorkloadFile]]


def job_networks(
    assignment: JobAssignment, device_id: str, revision: str, name: str
) -> dict[str, list[str]]:
    """The engine networks a service joins, each with the names it answers to there:
    its service name (and container_name, link aliases, hostname) on every network
    of the job it is on, and a network's own ``aliases`` on that network only."""
    service = assignment.spec.services[name]
    if service.runtime != "container" or service.network_mode not in (None, "default"):
        return {}
    everywhere = [name, *service.aliases]
    if service.hostname:
        everywhere.append(service.hostname)
    wanted = service.networks or {"default": []}
    return {
        network_name(assignment.job_id, device_id, revision, net): list(
            dict.fromkeys([*everywhere, *aliases])
        )
        for net, aliases in wanted.items()
    }


class ChangeFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Execution:
    plan: p.Plan
    assignment: JobAssignment | None
    started: dict[str, str] = field(default_factory=dict)  # service -> workload id
    undo: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


class Executor:
    def __init__(
        self,
        runtimes: RuntimeSet,
        device_id: str,
        health: HealthTracker,
        *,
        phase: Phase,
        env_hooks: list[EnvHook],
        settle: float = SETTLE_SECONDS,
    ) -> None:
        self.runtimes = runtimes
        self.device_id = device_id
        self.health = health
        self.phase = phase
        self.env_hooks = env_hooks
        # Secrets and configs as files on a tmpfs (agent.workload_files), one hook.
        self.file_hooks: list[FileHook] = []
        # The job's update-lock directory, mounted into its containers (agent/changes/locks.py).
        self.lock_dir: Callable[[str], Path] | None = None
        self.settle = settle
        # Compose build: fetch the version's context and build it here (agent/builds.py).
        self.builds: Builds | None = None
        self.progress: Callable[[str, str, str | None], None] = lambda job, service, text: None
        # Jobs change side by side, but the engine is changed one step at a time:
        # Podman 4.3 loses networks and hangs under concurrent creates and
        # removes. Pulls and the waits (dependencies, settle windows) overlap.
        self._engine = asyncio.Lock()

    # -- building workload specs --------------------------------------------------------

    def runtime_for(self, assignment: JobAssignment, service: str) -> Runtime:
        runtime = self.runtimes.for_service(assignment.spec.services[service])
        if runtime is None:
            kind = assignment.spec.services[service].runtime
            raise ChangeFailed(
                f"service {service}: this device has no {kind} runtime "
                f"(it offers: {', '.join(self.runtimes.names()) or 'none'})"
            )
        return runtime

    async def workload_spec(
        self, assignment: JobAssignment, revision: str, name: str
    ) -> WorkloadSpec:
        service = assignment.spec.services[name]
        if service.build is not None and service.build.digest:  # the image built here
            image = build_tag(assignment.application, assignment.version, service.build.digest)
            service = service.model_copy(update={"image": image})
        env = dict(service.environment)
        for hook in self.env_hooks:
            env.update(await hook(assignment.job_id, name))
        env.update(
            EDGEFLEET_JOB_ID=assignment.job_id,
            EDGEFLEET_DEVICE_ID=self.device_id,
            EDGEFLEET_SERVICE=name,
            EDGEFLEET_VERSION=assignment.version,
        )
        networks = job_networks(assignment, self.device_id, revision, name)
        lock_dir = None
        engine = self.runtimes.for_service(service)
        if self.lock_dir is not None and engine is not None and engine.name == "docker":
            lock_dir = self.lock_dir(assignment.job_id)
            env["EDGEFLEET_LOCK_FILE"] = "/run/edgefleet/lock/updates.lock"
        volumes = {
            v: (
                (definition.name or v)
                if definition.external
                else volume_name(assignment.job_id, self.device_id, v)
            )
            for v, definition in assignment.spec.volumes.items()
        }
        return WorkloadSpec(
            job_id=assignment.job_id,
            device_id=self.device_id,
            revision=revision,
            version=assignment.version,
            service_name=name,
            service=service,
            environment=env,
            networks=networks,
            volumes=volumes,
            files=[f for hook in self.file_hooks for f in hook(assignment, revision, name)],
            lock_dir=lock_dir,
        )

    # -- running a plan -----------------------------------------------------------------

    async def execute(self, plan: p.Plan, assignment: JobAssignment | None) -> None:
        run = Execution(plan, assignment)
        if assignment is not None and plan.kind in ("deploy", "repair", "upgrade"):
            # The device's policy, before anything is created: a refused job
            # leaves no network, volume or workload behind.
            refused = self.runtimes.refusals(assignment.spec)
            if refused:
                raise ChangeFailed("cannot run here: " + "; ".join(refused))
        try:
            for step in plan.steps:
                if isinstance(step, p.Prepare | p.AwaitDependencies | p.Verify):
                    await self._do(run, step)
                else:
                    async with self._engine:
                        await self._do(run, step)
        except (ChangeFailed, RuntimeFailure) as exc:
            message = exc.message
            log.warning("change %s failed: %s; rolling back", plan, message)
            for undo in reversed(run.undo):
                try:
                    async with self._engine:
                        await undo()
                except Exception:
                    log.exception("rollback step failed for %s", plan)
            raise ChangeFailed(message) from exc

    async def _do(self, run: Execution, step: p.Step) -> None:
        job_id = run.plan.job_id
        if isinstance(step, p.EnsureNetwork):
            for container in self._container_runtimes():
                await container.ensure_network(step.name, job_id, step.internal)
                run.undo.append(functools.partial(container.remove_network, step.name))
        elif isinstance(step, p.EnsureVolume):
            for container in self._container_runtimes():
                await container.ensure_volume(step.name, job_id)
        elif isinstance(step, p.Prepare):
            assert run.assignment is not None and run.plan.revision is not None
            self.phase(job_id, "pulling")
            spec = await self.workload_spec(run.assignment, run.plan.revision, step.service)
            runtime = self.runtime_for(run.assignment, step.service)
            if spec.service.build is not None:  # built here from the version's context
                if self.builds is None:
                    raise ChangeFailed(f"service {step.service}: this agent cannot build images")
                self.progress(job_id, step.service, "building")
                try:
                    await self.builds.build(
                        spec, runtime, lambda line: self.progress(job_id, step.service, line)
                    )
                finally:
                    self.progress(job_id, step.service, None)
            else:
                await runtime.prepare(spec, run.assignment.registry_auth)
        elif isinstance(step, p.AwaitDependencies):
            assert run.assignment is not None
            self.phase(job_id, "starting")
            await self._await_dependencies(run, step.service)
        elif isinstance(step, p.CreateAndStart):
            assert run.assignment is not None and run.plan.revision is not None
            spec = await self.workload_spec(run.assignment, run.plan.revision, step.service)
            runtime = self.runtime_for(run.assignment, step.service)
            workload_id = await runtime.create(spec)
            run.undo.append(functools.partial(runtime.remove, workload_id))
            run.started[step.service] = workload_id
            await runtime.start(workload_id)
            if spec.service.healthcheck is not None:
                self.health.watch(workload_id, runtime, spec.service.healthcheck)
        elif isinstance(step, p.Verify):
            assert run.assignment is not None
            if run.plan.kind in ("deploy", "repair"):
                # Nothing older to fall back to: report the workloads as they are
                # (running) while watching them through the settle window.
                self.phase(job_id, "")
            await self._verify(run, list(step.services))
        elif isinstance(step, p.RemoveWorkloads):
            await self.remove_workloads(job_id, list(step.workload_ids))
        elif isinstance(step, p.RemoveNetworks):
            for container in self._container_runtimes():
                for net in await container.list_networks(job_id):
                    keep = step.keep_revision
                    if keep and net.startswith(network_name(job_id, self.device_id, keep)):
                        continue
                    await container.remove_network(net)
        elif isinstance(step, p.RemoveVolumes):
            for container in self._container_runtimes():
                await container.remove_volumes(job_id)

    def _container_runtimes(self) -> list[ContainerRuntime]:
        return [self.runtimes.container] if self.runtimes.container is not None else []

    async def remove_workloads(self, job_id: str, ids: list[str]) -> None:
        wanted = set(ids)
        for runtime in self.runtimes.all():
            for workload in await runtime.workloads(job_id):
                if workload.id in wanted:
                    self.health.forget(workload.id)
                    await runtime.remove(workload.id)

    # -- waiting ------------------------------------------------------------------------

    async def _find(self, run: Execution, service: str) -> tuple[Runtime, Workload] | None:
        assert run.assignment is not None
        runtime = self.runtime_for(run.assignment, service)
        # During a service's refresh its old inputs run beside the new: the new first.
        inputs = inputs_digest(run.assignment.spec.services[service])
        found = [
            w
            for w in await runtime.workloads(run.plan.job_id)
            if w.service == service and w.revision == run.plan.revision
        ]
        found.sort(key=lambda w: w.inputs != inputs)
        return (runtime, found[0]) if found else None

    async def _await_dependencies(self, run: Execution, service: str) -> None:
        assert run.assignment is not None
        deps = run.assignment.spec.services[service].depends_on
        for dep, rule in deps.items():
            if dep not in run.assignment.spec.services:
                continue
            deadline = time.monotonic() + self._budget(run, dep)
            while True:
                found = await self._find(run, dep)
                state = self._dependency_state(found, rule.condition)
                if state == "ok":
                    break
                if state.startswith("failed") or time.monotonic() > deadline:
                    if not rule.required:
                        break
                    why = state if state.startswith("failed") else "timed out"
                    raise ChangeFailed(
                        f"service {service} depends on {dep} ({rule.condition}), which {why}"
                    )
                await asyncio.sleep(0.25)

    def _dependency_state(self, found: tuple[Runtime, Workload] | None, condition: str) -> str:
        if found is None:
            return "waiting"
        _, w = found
        if condition == "service_completed_successfully":
            if w.state == "exited":
                return "ok" if w.exit_code == 0 else f"failed with exit code {w.exit_code}"
            return "waiting"
        if condition == "service_healthy":
            health = self.health.state(w.id)
            if health == "healthy":
                return "ok"
            if health == "unhealthy":
                return "failed its healthcheck"
            return "failed: it exited" if w.state in ("exited", "dead") else "waiting"
        if w.state == "running" or (w.state == "exited" and w.exit_code == 0):
            return "ok"
        if w.state in ("exited", "dead"):
            return f"failed: exited with code {w.exit_code}"
        return "waiting"

    def _budget(self, run: Execution, service: str) -> float:
        assert run.assignment is not None
        check = run.assignment.spec.services[service].healthcheck
        if check is None:
            return START_TIMEOUT
        return max(
            START_TIMEOUT,
            check.start_period + (check.interval + check.timeout) * (check.retries + 1) + 10,
        )

    async def _verify(self, run: Execution, services: list[str]) -> None:
        """Every started service must come up: running past the settle time (or
        healthy, with a healthcheck), or a one-shot that exited 0."""
        assert run.assignment is not None
        pending = list(services)
        first_running: dict[str, float] = {}
        deadlines = {s: time.monotonic() + self._budget(run, s) for s in services}
        while pending:
            for service in list(pending):
                found = await self._find(run, service)
                spec = run.assignment.spec.services[service]
                if found is None:
                    raise ChangeFailed(f"service {service} disappeared while starting")
                runtime, w = found
                if w.state in ("exited", "dead"):
                    if w.exit_code == 0 and spec.restart in ("no", "on-failure"):
                        pending.remove(service)
                        continue
                    raise ChangeFailed(await self._exit_reason(runtime, w))
                if w.restarts > 0 or w.state == "restarting":
                    raise ChangeFailed(await self._exit_reason(runtime, w, restarting=True))
                if spec.healthcheck is not None:
                    health = self.health.state(w.id)
                    if health == "healthy":
                        pending.remove(service)
                    elif health == "unhealthy":
                        detail = self.health.last_output(w.id)
                        raise ChangeFailed(
                            f"service {service} is unhealthy: its healthcheck failed"
                            + (f" ({detail})" if detail else "")
                        )
                elif w.state == "running":
                    since = first_running.setdefault(service, time.monotonic())
                    if time.monotonic() - since >= self.settle:
                        pending.remove(service)
                if service in pending and time.monotonic() > deadlines[service]:
                    raise ChangeFailed(f"service {service} did not become ready in time")
            if pending:
                await asyncio.sleep(0.2)

    async def _exit_reason(self, runtime: Runtime, w: Workload, restarting: bool = False) -> str:
        tail: list[str] = []
        try:
            async for line in runtime.logs(w.id, tail=5, since=None, follow=False):
                tail.append(line.text.rstrip())
        except RuntimeFailure as exc:  # the reason goes out without its last lines
            log.info("service %s: cannot read its last lines: %s", w.service, exc.message)
        what = (
            f"keeps restarting (last exit code {w.exit_code})"
            if restarting
            else f"exited with code {w.exit_code}"
        )
        if w.error:
            what += f": {w.error}"
        message = f"service {w.service} {what} right after starting"
        if tail:
            message += "; last output: " + " | ".join(t for t in tail[-3:] if t)
        return message
