"""Device telemetry and workload logs that outlive the connection (issue 18).

sampler.py   CPU, memory, disk, temperature, network bytes, uptime from /proc and /sys
buffer.py    samples waiting for the server (SQLite in the state dir, bounded)
part.py      samples every --telemetry-interval, sends batches, forgets acked ones
logs.py      ships the last lines of every workload when they change
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgefleet.agent.part import AgentContext
    from edgefleet.agent.telemetry.logs import LogShipper
    from edgefleet.agent.telemetry.part import Telemetry


def telemetry(ctx: AgentContext) -> Telemetry:
    """The sampling part, sending over the agent's connection."""
    from edgefleet.agent.telemetry.buffer import SampleBuffer
    from edgefleet.agent.telemetry.part import Telemetry
    from edgefleet.agent.telemetry.sampler import Sampler

    settings = ctx.settings
    return Telemetry(
        Sampler(settings.state_dir),
        SampleBuffer(settings.state_dir / "telemetry.db", settings.telemetry_buffer_max),
        ctx.connection.send,
        interval=settings.telemetry_interval,
    )


def log_shipper(ctx: AgentContext) -> LogShipper:
    """The part shipping workloads' last log lines (when ``--logs-ship-interval`` > 0)."""
    from edgefleet.agent.telemetry.logs import LogShipper

    settings = ctx.settings
    return LogShipper(
        ctx.jobs,
        ctx.connection.send,
        interval=settings.logs_ship_interval,
        max_lines=settings.logs_ship_lines,
        max_bytes=settings.logs_ship_bytes,
    )
