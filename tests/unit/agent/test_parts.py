"""The parts table (agent/parts.py): which parts an agent builds for its
profile and settings, in which order, and the phases each brings to the agent
(agent/part.py). Built from a real assembled agent (sim runtime, no server)."""

from __future__ import annotations

from pathlib import Path

from edgefleet.agent.part import (
    HandlesCommands,
    HandlesMessages,
    HandlesStreams,
    OnConnected,
    Part,
    Starts,
)
from edgefleet.agent.parts import DEVICE, PARTS, Profile, build_parts
from edgefleet.agent.settings import AgentSettings
from edgefleet.agent.simulator import _make_agent
from edgefleet.wire.fed_relay import FedRelay
from edgefleet.wire.messages import DataAck, LocalActionsAck, ScheduleRunsAck, TelemetryAck
from tests.support.agents import agent_context

SIMULATED = Profile(simulated=True, fed=False, durable=False)


def _names(parts: list[Part]) -> list[str]:
    return [type(p).__name__ for p in parts]


async def _close(parts: list[Part]) -> None:
    """Close what the constructors opened (the parts were never started)."""
    for part in parts:
        buffer = getattr(part, "buffer", None)
        if buffer is not None:
            buffer.close()


async def test_a_device_builds_every_part_in_start_order(tmp_path: Path) -> None:
    ctx = await agent_context(tmp_path, local_api=True, logs_ship_interval=5)
    parts = build_parts(ctx, DEVICE)
    try:
        # no isolation firewall: the sim runtime has no network hooks
        assert _names(parts) == [
            "EngineStreams",
            "Tunnels",
            "DataService",
            "UpgradePart",
            "Telemetry",
            "LogShipper",
            "LocalApi",
            "FederatedPart",
            "Periodic",
        ]
        messages = {
            kind for p in parts if isinstance(p, HandlesMessages) for kind in p.message_handlers()
        }
        assert messages == {DataAck, TelemetryAck, LocalActionsAck, FedRelay, ScheduleRunsAck}
        streams = {k for p in parts if isinstance(p, HandlesStreams) for k in p.stream_handlers()}
        assert streams == {"exec", "logs", "agent-logs", "tcp", "volume", "save"}
        commands = {
            k for p in parts if isinstance(p, HandlesCommands) for k in p.command_handlers()
        }
        assert commands == {"upgrade-agent"}
        connected = [type(p).__name__ for p in parts if isinstance(p, OnConnected)]
        assert connected == [
            "UpgradePart", "Telemetry", "LogShipper", "LocalApi", "FederatedPart", "Periodic"
        ]  # fmt: skip
        # hooks into Jobs are in place before Jobs start
        data = next(p for p in parts if type(p).__name__ == "DataService")
        assert ctx.jobs.env_hooks == [data.env]  # type: ignore[attr-defined]
        assert ctx.jobs.executor.builds is not None and ctx.jobs.executor.file_hooks
        assert ctx.jobs.local_assignments is not None and ctx.jobs.status_hook is not None
    finally:
        await _close(parts)


async def test_settings_leave_parts_out(tmp_path: Path) -> None:
    ctx = await agent_context(tmp_path, local_api=False, logs_ship_interval=0)
    parts = build_parts(ctx, DEVICE)
    try:
        assert "LocalApi" not in _names(parts) and "LogShipper" not in _names(parts)
        assert ctx.jobs.local_assignments is None
    finally:
        await _close(parts)


async def test_the_simulator_profile_builds_only_light_parts(tmp_path: Path) -> None:
    ctx = await agent_context(tmp_path, local_api=True)
    assert _names(build_parts(ctx, SIMULATED)) == ["EngineStreams", "Tunnels", "UpgradePart"]
    assert ctx.jobs.env_hooks == []
    fed = build_parts(ctx, Profile(simulated=True, fed=True))
    assert _names(fed)[-1] == "FederatedPart"
    assert all(not isinstance(p, Starts) or type(p).__name__ == "FederatedPart" for p in fed)


async def test_the_simulator_chooses_its_profile_by_argument(tmp_path: Path) -> None:
    agent = _make_agent(AgentSettings(state_dir=tmp_path), 7.5, fed=True)
    assert agent.profile == Profile(simulated=True, fed=True, durable=False, supervise_every=7.5)
    assert agent.state.durable is False


def test_the_simulator_never_asks_for_the_isolation_firewall(tmp_path: Path) -> None:
    """The sim runtime has no networks to keep apart: the simulator's agents skip
    the firewall's capability checks, a real device still builds it when it can."""
    entry = next(e for e in PARTS if e.name == "isolation")
    settings = AgentSettings(state_dir=tmp_path)
    assert entry.when(settings, DEVICE)
    assert not entry.when(settings, SIMULATED)
    assert not entry.when(settings, Profile(simulated=True, fed=True))
