"""The agent part that fires periodic jobs, from the device's own clock.

    desired state (desired.json) --assignments with ``periodic``--> Timetable (pure)
         every second, or at the next fire time       Start / Skip / Cancel
                                                          |
                          Runner: containers in, exit codes out
                                                          |
                    RunLog (state dir, atomic, bounded) <-'
                          |  ScheduleRuns when connected, oldest first
                          v
                       server --ScheduleRunsAck(ids)--> RunLog.ack

Nothing here needs the server: the schedule comes from the persisted
desired state, so runs go on while the server is down and after an agent
restart with no server; they are reported when the connection is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from edgefleet.agent.jobs import Jobs
from edgefleet.agent.part import MessageHandler
from edgefleet.agent.schedule.core import Action, Cancel, Skip, Start, Timetable
from edgefleet.agent.schedule.runlog import RunLog
from edgefleet.agent.schedule.runner import Runner
from edgefleet.agent.state import StateDir
from edgefleet.wire.messages import Message, ScheduleRuns, ScheduleRunsAck
from edgefleet.wire.schedule import RunRecord, Schedule
from edgefleet.wire.status import utcnow
from edgefleet.wire.workload import JobAssignment

log = logging.getLogger(__name__)

TICK = 1.0  # a changed desired state is seen within this
RESEND = 30.0  # unacknowledged runs are offered again this often while connected
BATCH = 200  # runs per report (the wire's bound)
INTERRUPTED = "interrupted: the agent stopped during the run"
GONE = "stopped: the job no longer runs on this device"

Send = Callable[[Message], Awaitable[bool]]


class Periodic:
    def __init__(
        self, jobs: Jobs, state: StateDir, runner: Runner, send: Send, *, log_max: int
    ) -> None:
        self.jobs = jobs
        self.runner = runner
        self.send = send
        self.log = RunLog(state, log_max)
        self.table = Timetable(self.log.fired())
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()
        self._last_offer = 0.0
        self._stopping = False

    # -- life -----------------------------------------------------------------------

    async def start(self) -> None:
        begun = self.log.interrupted()
        for run in begun:  # their containers may still run: settled in the background
            self._soon(self._recover(run))
        if not begun:
            cleaned = await self.runner.clean()
            if cleaned:
                log.info("removed %d run containers left by an earlier agent", cleaned)
        self._loop_task = asyncio.create_task(self._loop(), name="periodic-jobs")

    async def _recover(self, begun: RunRecord) -> None:
        settled = await self.runner.recover(begun)
        log.info("job %s: run %s begun before a restart: %s", begun.job, begun.id, settled.state)
        self._record(settled)

    async def stop(self) -> None:
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for task in list(self._runs.values()):
            task.cancel()
        for task in list(self._runs.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def next_fire(self, job: str) -> datetime | None:
        return self.table.next_fire(job)

    # -- the clock --------------------------------------------------------------------

    def schedules(self) -> dict[str, Schedule]:
        return {
            job: a.periodic.schedule
            for job, a in self.jobs.assignments().items()
            if a.periodic is not None and a.periodic.services
        }

    async def _loop(self) -> None:
        while True:
            try:
                self._turn()
            except OSError:
                # The run log could not be written (disk full?): said, and tried again.
                log.exception("periodic jobs: a pass failed")
            await asyncio.sleep(self._delay())

    def _turn(self) -> None:
        """One look at the clock: fire what is due, offer what waits."""
        now = utcnow()
        wanted = self.schedules()
        for action in [*self.table.sync(wanted, now), *self.table.tick(now)]:
            self._do(action)
        self.log.forget_jobs(set(wanted) | set(self._runs))
        if self.log.pending(1) and asyncio.get_running_loop().time() - self._last_offer > RESEND:
            self._soon(self.flush())

    def _delay(self) -> float:
        wake = self.table.wake()
        if wake is None:
            return TICK
        return min(TICK, max(0.01, (wake - utcnow()).total_seconds()))

    def _do(self, action: Action) -> None:
        if isinstance(action, Start):
            assignment = self.jobs.assignments().get(action.job)
            if assignment is None or assignment.periodic is None:
                self._do_all(self.table.finished(action.job))
                return
            log.info("job %s: run for %s", action.job, action.scheduled.isoformat())
            task = asyncio.create_task(self._run(assignment, action.scheduled))
            self._runs[action.job] = task
        elif isinstance(action, Skip):
            log.info("job %s: skipped %s (%s)", action.job, action.scheduled, action.reason)
            self._record(
                RunRecord(
                    id=_skip_id(),
                    job=action.job,
                    scheduled=action.scheduled,
                    state="skipped",
                    error=action.reason,
                )
            )
        elif isinstance(action, Cancel) and action.gone:
            running = self._runs.get(action.job)
            if running is not None:
                running.cancel()
            volumes = action.job not in self.jobs.assignments()
            self._soon(self.runner.forget_job(action.job, volumes=volumes))

    def _do_all(self, actions: list[Action]) -> None:
        for action in actions:
            self._do(action)

    async def _run(self, assignment: JobAssignment, scheduled: datetime) -> None:
        job = assignment.job_id
        begun = RunRecord(
            id=uuid.uuid4().hex[:20],
            job=job,
            scheduled=scheduled,
            started=utcnow(),
            state="failed",
            error=INTERRUPTED,
        )
        self.log.begin(begun)  # settled at the next start if this process dies mid-run
        try:
            run = await self.runner.run(assignment, scheduled, begun.id, begun.started or utcnow())
        except asyncio.CancelledError:
            self._runs.pop(job, None)
            if not self._stopping:  # the job left this device: say so now
                self._record(begun.model_copy(update={"finished": utcnow(), "error": GONE}))
            raise
        except Exception as exc:  # an engine error we did not foresee: a failed run, logged
            log.exception("job %s: run %s failed unexpectedly", job, begun.id)
            error = f"the agent could not run it: {type(exc).__name__}: {exc}"[:2000]
            run = begun.model_copy(update={"finished": utcnow(), "error": error})
        self._runs.pop(job, None)
        log.info("job %s: run %s %s (exit code %s)", job, run.id, run.state, run.exit_code)
        self._record(run)
        self._do_all(self.table.finished(job))

    # -- reporting --------------------------------------------------------------------

    def _record(self, run: RunRecord) -> None:
        self.log.add(run)
        self._soon(self.flush())

    async def flush(self) -> None:
        """Offer the oldest unacknowledged runs to the server (if connected)."""
        async with self._flushing:
            batch = self.log.pending(BATCH)
            if not batch:
                return
            self._last_offer = asyncio.get_running_loop().time()
            await self.send(ScheduleRuns(runs=batch))

    def message_handlers(self) -> Mapping[type[Message], MessageHandler]:
        return {ScheduleRunsAck: self.on_ack}

    async def on_ack(self, ack: ScheduleRunsAck) -> None:
        self.log.ack(ack.ids)
        if self.log.pending(1):
            await self.flush()

    async def on_connected(self) -> None:
        await self.flush()

    def _soon(self, coro: Awaitable[object]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _skip_id() -> str:
    return "s" + uuid.uuid4().hex[:19]
