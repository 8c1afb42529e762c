"""Start a periodic job's one-shot services for one fire time and wait for them.

A run's containers are made with the same runtime calls as any workload
(prepare, create, start) and the same spec building (environment, data URL,
volumes, networks), but they are labelled with a device scope of their own
(``<device>.runs``): the change queue lists workloads by the device's scope,
so it never sees a run's containers as drift to repair or orphans to
remove, and the runner lists and removes only its own.

Networks: a run joins the job's current network when the job also has
always-on services (so a run reaches ``db:5432``), else a network of its own
(``ef-<job>-<device>-runs``), which the isolation firewall keeps apart from
other jobs like any job network.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import time
from dataclasses import dataclass, fields
from datetime import datetime

from edgefleet.agent.changes.executor import Executor
from edgefleet.agent.changes.plan import revision_of
from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.runtimes.base import (
    LABEL_DEVICE,
    LABEL_REVISION,
    Runtime,
    RuntimeSet,
    WorkloadSpec,
    network_name,
    scope,
    volume_name,
)
from edgefleet.wire.schedule import RunRecord
from edgefleet.wire.status import utcnow
from edgefleet.wire.workload import JobAssignment

log = logging.getLogger(__name__)

RUN_SCOPE = ".runs"
RUN_NETWORK = "runs"
LABEL_RUN = "io.edgefleet.run"
POLL = 0.5
STOP_GRACE = 10.0


@dataclass
class RunSpec(WorkloadSpec):
    """A workload spec for one run: its own name and scope labels."""

    run_id: str = ""
    scope_device: str = ""

    @property
    def name(self) -> str:
        return f"{scope(self.job_id, self.device_id)}-run{self.run_id[:10]}-{self.service_name}"

    @property
    def labels(self) -> dict[str, str]:
        labels = dict(super().labels)
        labels[LABEL_DEVICE] = self.scope_device
        labels[LABEL_REVISION] = f"run{self.run_id[:10]}"
        labels[LABEL_RUN] = self.run_id
        return labels


def run_view(runtime: Runtime, device_id: str) -> Runtime:
    """The same engine seen through the runs' scope: lists and labels only
    the runs' containers."""
    view = copy.copy(runtime)
    view.device_id = device_id + RUN_SCOPE
    return view


class Runner:
    def __init__(
        self,
        runtimes: RuntimeSet,
        executor: Executor,
        device_id: str,
        *,
        timeout: float,
        engine_lock: asyncio.Lock,
    ) -> None:
        self.runtimes = runtimes
        self.executor = executor
        self.device_id = device_id
        self.timeout = timeout
        # Engine changes one at a time with the change queue (Podman 4.3 loses
        # networks under concurrent creates and removes).
        self.engine = engine_lock
        self._view: Runtime | None = None

    def view(self) -> Runtime | None:
        """The runs' view of the container runtime, made once (it keeps its
        own engine client)."""
        container = self.runtimes.container
        if container is None:
            return None
        if self._view is None:
            self._view = run_view(container, self.device_id)
        return self._view

    async def run(
        self, assignment: JobAssignment, scheduled: datetime, run_id: str, started: datetime
    ) -> RunRecord:
        """One fire time of ``assignment``: every one-shot service started in
        start order, waited for up to the run timeout, then removed."""
        assert assignment.periodic is not None
        record = functools.partial(RunRecord, id=run_id, job=assignment.job_id, scheduled=scheduled)
        whole = assignment.spec.model_copy(
            update={"services": {**assignment.spec.services, **assignment.periodic.services}}
        )
        names = [n for n in whole.start_order() if n in assignment.periodic.services]
        refused = self.runtimes.refusals(whole)
        view = self.view()
        if refused or view is None:
            why = "; ".join(refused) if refused else "this device has no container runtime"
            return record(
                started=started, finished=utcnow(), state="failed", error=f"cannot run here: {why}"
            )
        ids: dict[str, str] = {}
        codes: dict[str, int | None] = {}
        error: str | None = None
        try:
            full = assignment.model_copy(update={"spec": whole})
            await self._start(full, names, run_id, view, ids)
            started = utcnow()  # its containers run (images pulled, created, started)
            codes, error = await self._wait(view, assignment.job_id, ids)
        except RuntimeFailure as exc:
            error = exc.message
        finally:
            await asyncio.shield(self._remove(view, list(ids.values())))
        failed = [c for c in (codes.get(n) for n in names) if c not in (0, None)]
        exit_code = failed[0] if failed else (0 if codes and error is None else None)
        ok = error is None and bool(codes) and all(codes.get(n) == 0 for n in names)
        return record(
            started=started,
            finished=utcnow(),
            exit_code=exit_code,
            state="ok" if ok else "failed",
            error=error,
            services=codes,
        )

    async def _network(self, assignment: JobAssignment) -> str:
        """The revision key of the network a run joins (see the module doc)."""
        container = self.runtimes.container
        assert container is not None
        revision = revision_of(assignment)
        existing = await container.list_networks(assignment.job_id)
        if network_name(assignment.job_id, self.device_id, revision) in existing:
            return revision
        own = network_name(assignment.job_id, self.device_id, RUN_NETWORK)
        async with self.engine:
            # Labelled with a job id of its own: the change queue's network
            # clean-up (by job label) leaves it alone.
            await container.ensure_network(own, assignment.job_id + RUN_SCOPE)
        return RUN_NETWORK

    async def _start(
        self,
        assignment: JobAssignment,
        names: list[str],
        run_id: str,
        view: Runtime,
        ids: dict[str, str],
    ) -> None:
        container = self.runtimes.container
        assert container is not None
        original = assignment.model_copy(
            update={
                "spec": assignment.spec.model_copy(
                    update={
                        "services": {
                            n: s for n, s in assignment.spec.services.items() if n not in names
                        }
                    }
                )
            }
        )
        net_key = await self._network(original)
        for volume, definition in sorted(assignment.spec.volumes.items()):
            if not definition.external:
                async with self.engine:
                    await container.ensure_volume(
                        volume_name(assignment.job_id, self.device_id, volume), assignment.job_id
                    )
        for name in names:
            base = await self.executor.workload_spec(assignment, net_key, name)
            spec = RunSpec(
                **{f.name: getattr(base, f.name) for f in fields(WorkloadSpec)},
                run_id=run_id,
                scope_device=view.device_id,
            )
            await view.prepare(spec, assignment.registry_auth)
            async with self.engine:
                workload_id = await view.create(spec)
                ids[name] = workload_id
                await view.start(workload_id)

    async def _wait(
        self, view: Runtime, job_id: str, ids: dict[str, str]
    ) -> tuple[dict[str, int | None], str | None]:
        deadline = time.monotonic() + self.timeout
        wanted = {workload_id: name for name, workload_id in ids.items()}
        while True:
            found = {w.id: w for w in await view.workloads(job_id) if w.id in wanted}
            done = all(w.state in ("exited", "dead") for w in found.values())
            if done or time.monotonic() > deadline:
                break
            await asyncio.sleep(POLL)
        error = None
        if not done:
            error = f"did not finish within {self.timeout:g} s (--schedule-run-timeout); stopped"
            for workload_id in wanted:
                await view.stop(workload_id, STOP_GRACE)
            found = {w.id: w for w in await view.workloads(job_id) if w.id in wanted}
        codes = {name: (found[i].exit_code if i in found else None) for i, name in wanted.items()}
        failing = [i for i, name in wanted.items() if codes[name] not in (0, None)]
        if error is None and failing:
            name = wanted[failing[0]]
            error = f"service {name} exited with code {codes[name]}"
            tail = await self._tail(view, failing[0])
            if tail:
                error += "; last output: " + tail
        if error is None and any(c is None for c in codes.values()):
            error = "a service's container disappeared during the run"
        return codes, error

    async def _tail(self, view: Runtime, workload_id: str) -> str:
        lines: list[str] = []
        try:
            async for line in view.logs(workload_id, tail=3, since=None, follow=False):
                if line.text.strip():
                    lines.append(line.text.rstrip()[:300])
        except RuntimeFailure:
            return ""
        return " | ".join(lines[-3:])

    async def _remove(self, view: Runtime, workload_ids: list[str]) -> None:
        for workload_id in workload_ids:
            try:
                async with self.engine:
                    await view.remove(workload_id)
            except RuntimeFailure as exc:
                log.warning("could not remove run container %s: %s", workload_id[:12], exc.message)

    async def recover(self, begun: RunRecord) -> RunRecord:
        """Settle a run an earlier agent process began (it crashed or was
        stopped): its containers, if they are still there, are waited for like
        any run's and give the real result; with none left it failed, as
        interrupted. Its containers are removed either way."""
        view = self.view()
        mine = f"run{begun.id[:10]}"
        found = [w for w in await view.workloads(begun.job) if w.revision == mine] if view else []
        if view is None or not found:
            return begun.model_copy(update={"finished": utcnow()})
        ids = {w.service: w.id for w in found}
        try:
            codes, error = await self._wait(view, begun.job, ids)
        finally:
            await asyncio.shield(self._remove(view, list(ids.values())))
        failed = [c for c in codes.values() if c not in (0, None)]
        return begun.model_copy(
            update={
                "finished": utcnow(),
                "services": codes,
                "exit_code": failed[0] if failed else 0,
                "state": "ok" if error is None else "failed",
                "error": error,
            }
        )

    async def clean(self, job_id: str | None = None) -> int:
        """Remove run containers left by an agent that stopped mid-run (or of
        one job); returns how many."""
        view = self.view()
        if view is None:
            return 0
        leftovers = [w.id for w in await view.workloads(job_id)]
        await self._remove(view, leftovers)
        return len(leftovers)

    async def forget_job(self, job_id: str, *, volumes: bool) -> None:
        """The job is gone: its runs' network (and, when it has no always-on
        services left either, its volumes)."""
        container = self.runtimes.container
        if container is None:
            return
        try:
            await self.clean(job_id)
            async with self.engine:
                await container.remove_network(network_name(job_id, self.device_id, RUN_NETWORK))
                if volumes:
                    await container.remove_volumes(job_id)
        except RuntimeFailure as exc:  # left behind, and said so
            log.warning("job %s: could not clean up after its runs: %s", job_id, exc.message)
