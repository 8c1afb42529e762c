"""A real agent's context for tests of its parts, without a server.

:func:`agent_context` assembles an :class:`~edgefleet.agent.agent.Agent` the
way ``run`` does (the ``sim`` runtime, a stored enrollment, real Jobs and a
connection that is never started), so a part under test is built from exactly
what it gets on a device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgefleet.agent.agent import Agent
from edgefleet.agent.part import AgentContext
from edgefleet.agent.runtimes.base import RuntimeSet
from edgefleet.agent.runtimes.sim import SimRuntime
from edgefleet.agent.settings import AgentSettings
from edgefleet.agent.state import Identity, StateDir
from edgefleet.wire.messages import DesiredState


async def agent_context(
    state_dir: Path,
    *,
    desired: DesiredState | None = None,
    device_id: str = "d1",
    name: str = "enrolled",
    **settings: Any,
) -> AgentContext:
    state = StateDir(state_dir)
    state.save_identity(
        Identity(
            device_id=device_id,
            credential="unused",
            name=name,
            project="default",
            servers=["http://127.0.0.1:9"],
        )
    )
    if desired is not None:
        state.save_desired(desired)
    sim = SimRuntime()
    agent = Agent(
        AgentSettings(state_dir=state_dir, **settings),
        runtimes=RuntimeSet(container=sim, process=sim),
    )
    return await agent.assemble()
