"""Periodic jobs on the device: a pure timetable (``core``), the bounded run
log (``runlog``), the runner that starts a run's containers (``runner``) and
the part tying them together (``part``). :func:`attach` adds it to an agent."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgefleet.agent.agent import Agent
    from edgefleet.agent.schedule.part import Periodic


def attach(agent: Agent) -> Periodic:
    """Add the periodic-jobs part to ``agent`` (after its Jobs exist)."""
    from edgefleet.agent.schedule.part import Periodic
    from edgefleet.agent.schedule.runner import Runner
    from edgefleet.wire.messages import ScheduleRunsAck

    assert agent.jobs is not None and agent.runtimes is not None
    runner = Runner(
        agent.runtimes,
        agent.jobs.executor,
        agent.jobs.device_id,
        timeout=agent.settings.schedule_run_timeout,
        # the change queue's engine lock: one engine change at a time (see Runner)
        engine_lock=agent.jobs.executor._engine,
    )
    part = Periodic(
        agent.jobs, agent.state, runner, agent.jobs.report, log_max=agent.settings.schedule_log_max
    )
    agent.parts.append(part)
    agent.message_handlers[ScheduleRunsAck] = part.on_ack
    agent.on_connected.append(part.on_connected)
    return part
