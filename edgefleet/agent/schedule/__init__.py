"""Periodic jobs on the device: a pure timetable (``core``), the bounded run
log (``runlog``), the runner that starts a run's containers (``runner``) and
the part tying them together (``part``). :func:`periodic` builds it from the
agent's context."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgefleet.agent.part import AgentContext
    from edgefleet.agent.schedule.part import Periodic


def periodic(ctx: AgentContext) -> Periodic:
    """The periodic-jobs part, running through the change queue's executor."""
    from edgefleet.agent.schedule.part import Periodic
    from edgefleet.agent.schedule.runner import Runner

    jobs = ctx.jobs
    runner = Runner(
        ctx.runtimes,
        jobs.executor,
        jobs.device_id,
        timeout=ctx.settings.schedule_run_timeout,
        # the change queue's engine lock: one engine change at a time (see Runner)
        engine_lock=jobs.executor._engine,
    )
    return Periodic(jobs, ctx.state, runner, jobs.report, log_max=ctx.settings.schedule_log_max)
