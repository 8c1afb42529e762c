"""Jobs on this device: desired state in, workloads out, status back.

- :meth:`Jobs.desired` takes a snapshot from the server (ignoring stale
  generations), persists it, and queues every job it touches.
- Workers take jobs from the :class:`ChangeQueue` (one change per job at a
  time, different jobs side by side), plan against the engine's actual
  state and execute (with rollback).
- The supervisor looks at the engine every few seconds: it queues drift
  (a removed container, an orphan, an ended job, a retry that is due) and
  reports status changes. It never needs the server: after a reboot with no
  network, the persisted desired state brings everything back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from edgefleet.agent.changes.executor import ChangeFailed, EnvHook, Executor
from edgefleet.agent.changes.lastgood import LastGood
from edgefleet.agent.changes.locks import LockState, UpdateLocks
from edgefleet.agent.changes.plan import CreateAndStart, plan_job, revision_of
from edgefleet.agent.changes.queue import ChangeQueue, RetryBook
from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.health import HealthTracker
from edgefleet.agent.runtimes.base import Runtime, RuntimeSet, Workload
from edgefleet.agent.state import StateDir
from edgefleet.agent.status import job_status
from edgefleet.tasks import cancel_all, every
from edgefleet.wire.messages import Applied, DesiredState, JobStatusReport, Message
from edgefleet.wire.status import JobStatus
from edgefleet.wire.workload import JobAssignment

log = logging.getLogger(__name__)

SUPERVISE_EVERY = 2.0
PING_EVERY = 10.0

Report = Callable[[Message], Awaitable[bool]]
# The owner's local API (agent/local): its apps' assignments, services it holds
# stopped at a revision, and how a held service shows in a job's status.
LocalAssignments = Callable[[], dict[str, JobAssignment]]
HeldServices = Callable[[str, str], set[str]]  # (job_id, revision) -> services
StatusHook = Callable[[JobStatus], JobStatus]


class Jobs:
    def __init__(
        self, state: StateDir, runtimes: RuntimeSet, device_id: str, report: Report
    ) -> None:
        self.state = state
        self.runtimes = runtimes
        self.device_id = device_id
        runtimes.bind(device_id)
        self.report = report
        self.queue = ChangeQueue()
        self.retries = RetryBook()
        self.last_good = LastGood(state)
        self.locks = UpdateLocks(state)
        self.waiting: dict[str, str] = {}  # job -> why its change waits (an update lock)
        self.health = HealthTracker()
        self.env_hooks: list[EnvHook] = []
        self.executor = Executor(
            runtimes,
            device_id,
            self.health,
            phase=self._set_phase,
            env_hooks=self.env_hooks,
        )
        self.executor.lock_dir = self.locks.dir_for  # mounted into the job's containers
        self.executor.progress = self._set_progress  # image builds' steps (agent/builds.py)
        self.progress: dict[str, dict[str, str]] = {}  # job -> service -> change under way
        self.desired_state = state.load_desired() or DesiredState(generation=0)
        self.applied_generation: int = state.load_json("applied.json", {}).get("generation", 0)
        self._processing_generation = self.desired_state.generation
        self.runtime_healthy = True
        self.phases: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.workloads: list[Workload] = []
        self._sent: dict[str, str] = {}
        self._removed: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[object]] = set()
        self._last_ping = 0.0
        self.supervise_every = SUPERVISE_EVERY
        self.local_assignments: LocalAssignments | None = None
        self.held: HeldServices | None = None
        self.status_hook: StatusHook | None = None

    # -- desired state ------------------------------------------------------------------

    def assignments(self) -> dict[str, JobAssignment]:
        now = datetime.now(UTC)
        found = {a.job_id: a for a in self.desired_state.jobs if a.end is None or a.end > now}
        if self.local_assignments is not None:
            found.update(
                self.local_assignments()
            )  # the owner's apps: the server cannot replace them
        return found

    def desired(self, message: DesiredState) -> None:
        if message.generation < self.desired_state.generation:
            log.info(
                "ignoring stale desired state %d < %d",
                message.generation,
                self.desired_state.generation,
            )
            return
        before = {a.job_id for a in self.desired_state.jobs}
        logins = {a.job_id: a.registry_auth for a in self.desired_state.jobs}
        specs = {a.job_id: a.spec for a in self.desired_state.jobs}
        for assignment in message.jobs:
            if logins.get(assignment.job_id, assignment.registry_auth) != assignment.registry_auth:
                self.retries.forget_job(assignment.job_id)  # new credentials: pull again now
            elif specs.get(assignment.job_id, assignment.spec) != assignment.spec:
                # New inputs (a rotated secret, a variable) keep the revision: the
                # backoff earned by the old inputs must not hold the new ones back.
                self.retries.forget_job(assignment.job_id)
        self.desired_state = message
        self.state.save_desired(message)
        self._processing_generation = message.generation
        for job_id in (
            before | {a.job_id for a in message.jobs} | {w.job_id for w in self.workloads}
        ):
            self.queue.want(job_id)
        if self.queue.idle:
            self._mark_applied()

    def _mark_applied(self) -> None:
        generation = self._processing_generation
        if generation != self.applied_generation:
            self.applied_generation = generation
            self.state.save_json("applied.json", {"generation": generation})
        self._soon(self.report(Applied(generation=generation)))

    def _soon(self, coro: Awaitable[object]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- life ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self._observe()
        for job_id in set(self.assignments()) | {w.job_id for w in self.workloads}:
            self.queue.want(job_id)
        self._tasks = [
            *(
                asyncio.create_task(self._work(), name=f"change-worker-{n}")
                for n in range(self.queue.limit)
            ),
            asyncio.create_task(self._supervise(), name="supervisor"),
        ]

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        await self.health.stop()

    def connected(self) -> None:
        """After (re)connecting: the server gets every status afresh."""
        self._sent.clear()
        self._soon(self._report_changes())

    # -- the worker ---------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            job_id = await self.queue.wait()
            try:
                await self._apply(job_id)
            except Exception:  # the worker outlives one job's bug: logged with its traceback
                log.exception("applying job %s failed unexpectedly", job_id)
            finally:
                self.queue.done(job_id)
            await self._observe()
            await self._report_changes()
            if self.queue.idle:
                self._mark_applied()

    async def _apply(self, job_id: str) -> None:
        want = self.assignments().get(job_id)
        have: list[Workload] = []
        networks: list[str] = []
        for runtime in self.runtimes.all():
            have += await runtime.workloads(job_id)
        if self.runtimes.container is not None:
            networks = await self.runtimes.container.list_networks(job_id)
        plan = plan_job(job_id, want, have, networks, self.device_id)
        if plan.kind == "noop":
            # What is wanted runs (a reverted rollout asks for the revision that
            # kept serving): an error about another revision no longer applies.
            self.errors.pop(job_id, None)
            self.waiting.pop(job_id, None)
            if want is not None and _serving(want, have):
                self.last_good.record(want)
            return
        revision = plan.revision
        if plan.kind == "repair" and self.held is not None and revision is not None:
            # The owner stopped these services on the device: keep them stopped
            # (until started again, or a new revision arrives).
            starting = {s.service for s in plan.steps if isinstance(s, CreateAndStart)}
            if starting and starting <= self.held(job_id, revision):
                return
        if (
            want is not None
            and revision is not None
            and plan.kind in ("deploy", "upgrade", "repair")
        ):
            blocked = self.retries.blocked(job_id, revision, time.monotonic())
            if blocked is not None:
                self.errors[job_id] = blocked.error
                await self._fall_back(job_id, want)
                return
        if want is not None and plan.kind == "upgrade":
            reason = self.locks.gate(want)
            if reason is not None:
                if self.waiting.get(job_id) != reason:
                    log.info("job %s: %s", job_id, reason)
                self.waiting[job_id] = reason
                return
        self.waiting.pop(job_id, None)
        log.info("applying %s", plan)
        try:
            await self.executor.execute(plan, want)
        except (ChangeFailed, RuntimeFailure) as exc:
            if revision is not None:
                failure = self.retries.failed(job_id, revision, exc.message, time.monotonic())
                log.warning("job %s: %s (attempt %d)", job_id, exc.message, failure.attempts)
            self.errors[job_id] = exc.message
            self.phases.pop(job_id, None)
            if want is not None:
                await self._fall_back(job_id, want)
        else:
            log.info("applied %s", plan)
            if revision is not None:
                self.retries.succeeded(job_id, revision)
            self.errors.pop(job_id, None)
            if want is not None:
                self.last_good.record(want)
            if plan.kind == "remove":
                self.retries.forget_job(job_id)
                self.last_good.forget(job_id)
                self.locks.forget(job_id)
                self._removed.add(job_id)
        finally:
            self.phases.pop(job_id, None)

    async def _fall_back(self, job_id: str, want: JobAssignment) -> None:
        """The desired revision cannot run: if nothing of the job is serving any
        more (say the engine lost its containers in a reboot), start the last
        revision that ran healthy here instead of leaving the device empty."""
        good = self.last_good.get(job_id)
        if good is None or revision_of(good) == revision_of(want):
            return
        have: list[Workload] = []
        for runtime in self.runtimes.all():
            have += await runtime.workloads(job_id)
        if any(w.state in ("running", "restarting") for w in have):
            return  # the old revision still serves (start new, stop old kept it)
        networks: list[str] = []
        if self.runtimes.container is not None:
            networks = await self.runtimes.container.list_networks(job_id)
        plan = plan_job(job_id, good, have, networks, self.device_id)
        if plan.kind in ("noop", "remove"):
            return
        log.warning(
            "job %s: desired version %s cannot run; restoring last good version %s (%s)",
            job_id,
            want.version,
            good.version,
            plan,
        )
        try:
            await self.executor.execute(plan, good)
        except (ChangeFailed, RuntimeFailure) as exc:
            log.warning("job %s: last good version %s failed too: %s", job_id, good.version, exc)
        finally:
            self.phases.pop(job_id, None)

    def _set_phase(self, job_id: str, phase: str) -> None:
        """Show a change's progress; an empty phase lets the workloads speak
        for themselves again (looked at right away, so "running" is reported
        the moment it is true)."""
        if not phase:
            if self.phases.pop(job_id, None) is not None:
                self._soon(self._observe_and_report())
            return
        if self.phases.get(job_id) != phase:
            self.phases[job_id] = phase
            self._soon(self._report_changes())

    def _set_progress(self, job_id: str, service: str, text: str | None) -> None:
        """A service's change under way (an image build's step), or done (None)."""
        current = self.progress.setdefault(job_id, {})
        if text is None:
            current.pop(service, None)
        elif current.get(service) != text:
            current[service] = text
        else:
            return
        self._soon(self._report_changes())

    async def _observe_and_report(self) -> None:
        await self._observe()
        await self._report_changes()

    # -- the supervisor -----------------------------------------------------------------

    async def _observe(self) -> None:
        workloads: list[Workload] = []
        for runtime in self.runtimes.all():
            try:
                workloads += await runtime.workloads()
            except RuntimeFailure as exc:
                log.warning("cannot list workloads of %s: %s", runtime.name, exc.message)
        self.workloads = workloads
        live = {w.id for w in workloads}
        for workload_id in self.health.watched() - live:
            self.health.forget(workload_id)
        for w in workloads:
            want = self.assignments().get(w.job_id)
            if want is not None and w.service in want.spec.services:
                check = want.spec.services[w.service].healthcheck
                serving = self.runtimes.for_service(want.spec.services[w.service])
                if check is not None and serving is not None and w.state == "running":
                    self.health.watch(w.id, serving, check)

    async def _supervise(self) -> None:
        await every(self.supervise_every, self._supervise_once, log, "supervisor pass")

    async def _supervise_once(self) -> None:
        now = time.monotonic()
        if now - self._last_ping > PING_EVERY:
            self._last_ping = now
            healthy = all([await r.ping() for r in self.runtimes.all()])
            self.runtime_healthy = healthy
        await self._observe()
        wanted = self.assignments()
        present_jobs = {w.job_id for w in self.workloads}
        for job_id in present_jobs - set(wanted):
            self.queue.want(job_id)  # orphan or ended: remove
        for job_id, assignment in wanted.items():
            if job_id in self.queue:
                continue
            revision = revision_of(assignment)
            services = {
                w.service
                for w in self.workloads
                if w.job_id == job_id and w.revision == revision and w.state != "created"
            }
            missing = services != set(assignment.spec.services)
            if missing and self.retries.blocked(job_id, revision, now) is None:
                self.queue.want(job_id)
        for job_id in self.retries.due(now):
            if job_id in wanted:
                self.queue.want(job_id)
        await self._report_changes()

    async def find_workload(self, job_id: str, service: str) -> tuple[Workload, Runtime]:
        """The workload serving ``service`` of ``job_id`` now (the new revision
        once complete, else the old one). Raises RuntimeFailure if none runs."""
        assignment = self.assignments().get(job_id)
        if assignment is None:
            raise RuntimeFailure(f"job {job_id} does not run on this device")
        if service not in assignment.spec.services:
            raise RuntimeFailure(
                f"job {job_id} has no service {service!r} (it has: {', '.join(sorted(assignment.spec.services))})"
            )
        runtime = self.runtimes.for_service(assignment.spec.services[service])
        if runtime is None:
            raise RuntimeFailure(f"service {service} has no runtime on this device")
        revision = revision_of(assignment)
        candidates = [w for w in await runtime.workloads(job_id) if w.service == service]
        candidates.sort(key=lambda w: (w.revision != revision, w.state != "running"))
        if not candidates:
            raise RuntimeFailure(f"service {service} of job {job_id} is not running on this device")
        return candidates[0], runtime

    # -- update locks -------------------------------------------------------------------

    def lock(self, job_id: str, action: str) -> LockState:
        """``take``, ``release`` or ``get`` the job's update lock (from its own
        workloads, through the data endpoint); a release lets a waiting
        upgrade go at once."""
        if action == "take":
            return self.locks.take(job_id)
        if action == "release":
            state = self.locks.release(job_id)
            if job_id in self.waiting:
                self.queue.want(job_id)
            return state
        return self.locks.get(job_id)

    # -- status -------------------------------------------------------------------------

    def statuses(self) -> list[JobStatus]:
        wanted = self.assignments()
        result = []
        for job_id, assignment in wanted.items():
            result.append(
                job_status(
                    assignment,
                    [w for w in self.workloads if w.job_id == job_id],
                    phase=self.phases.get(job_id),
                    error=self.errors.get(job_id),
                    health=self.health.state,
                ).model_copy(update={"waiting": self.waiting.get(job_id)})
            )
            for service, text in self.progress.get(job_id, {}).items():
                if service in result[-1].services:
                    result[-1].services[service].progress = text
        if self.status_hook is not None:
            result = [self.status_hook(status) for status in result]
        for job_id in self._removed - set(wanted):
            result.append(JobStatus(job_id=job_id, state="removed"))
        return result

    async def _report_changes(self) -> None:
        changed = []
        for status in self.statuses():
            fingerprint = status.model_dump_json(exclude={"time"})
            if self._sent.get(status.job_id) != fingerprint:
                changed.append((status, fingerprint))
        if not changed:
            return
        sent = await self._send(JobStatusReport(statuses=[s for s, _ in changed]))
        if sent:
            for status, fingerprint in changed:
                self._sent[status.job_id] = fingerprint
                if status.state == "removed":
                    self._removed.discard(status.job_id)

    async def _send(self, message: Message) -> bool:
        try:
            result = await self.report(message)
        except Exception:  # resent with the next pass; the failure is said once, with its traceback
            log.exception("sending %s failed", type(message).__name__)
            return False
        return result is not False


def _serving(want: JobAssignment, have: list[Workload]) -> bool:
    """Every service of ``want``'s revision is up (running, or a one-shot done)."""
    revision = revision_of(want)
    current = [w for w in have if w.revision == revision]
    return bool(current) and all(
        w.state == "running" or (w.state == "exited" and w.exit_code == 0) for w in current
    )
