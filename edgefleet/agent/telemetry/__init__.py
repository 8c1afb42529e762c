"""Device telemetry and workload logs that outlive the connection (issue 18).

sampler.py   CPU, memory, disk, temperature, network bytes, uptime from /proc and /sys
buffer.py    samples waiting for the server (SQLite in the state dir, bounded)
part.py      samples every --telemetry-interval, sends batches, forgets acked ones
logs.py      ships the last lines of every workload when they change
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgefleet.agent.agent import Agent


def attach(agent: Agent) -> None:
    """Add telemetry and log shipping to ``agent`` (after its Jobs exist)."""
    from edgefleet.agent.telemetry.buffer import SampleBuffer
    from edgefleet.agent.telemetry.logs import LogShipper
    from edgefleet.agent.telemetry.part import Telemetry
    from edgefleet.agent.telemetry.sampler import Sampler
    from edgefleet.wire.messages import Message, TelemetryAck

    assert agent.jobs is not None
    settings = agent.settings

    async def send(message: Message) -> bool:
        return agent.connection is not None and await agent.connection.send(message)

    telemetry = Telemetry(
        Sampler(settings.state_dir),
        SampleBuffer(settings.state_dir / "telemetry.db", settings.telemetry_buffer_max),
        send,
        interval=settings.telemetry_interval,
    )
    agent.parts.append(telemetry)
    agent.on_connected.append(telemetry.on_connected)
    agent.message_handlers[TelemetryAck] = telemetry.on_ack
    if settings.logs_ship_interval > 0:
        shipper = LogShipper(
            agent.jobs,
            send,
            interval=settings.logs_ship_interval,
            max_lines=settings.logs_ship_lines,
            max_bytes=settings.logs_ship_bytes,
        )
        agent.parts.append(shipper)
        agent.on_connected.append(shipper.on_connected)
