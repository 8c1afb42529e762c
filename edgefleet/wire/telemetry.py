"""What an agent reports about its device's health and its workloads' recent logs.

    agent sampler --Sample every --telemetry-interval--> on-disk buffer (state dir)
        --TelemetryBatch(samples, oldest first)--> server --TelemetryAck(upto)--> buffer forgets
    agent log shipper --WorkloadLogs(job, service, last lines) when they changed--> server

A sample carries the agent's own ``seq`` (never reused on that device) and its
time; the server stores each (device, time) once, so a batch sent again after a
lost ack stores nothing twice. Every list here has a bound the receiver checks
before anything else (a hostile device cannot make the server hold more).
The messages themselves live in :mod:`edgefleet.wire.messages`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_SAMPLES = 500  # per TelemetryBatch
MAX_LOG_LINES = 2000  # per WorkloadLogs
MAX_LINE_CHARS = 4096


class Sample(BaseModel):
    """One measurement of the device. Percentages are of the whole (all cores,
    all memory, the filesystem holding the state dir); counters are since boot."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=1, description="the agent's number for it, increasing")
    time: float = Field(gt=0, description="seconds since the epoch, when it was taken")
    cpu: float = Field(ge=0, le=100, description="percent busy since the previous sample")
    memory: float = Field(ge=0, le=100, description="percent of memory in use")
    disk: float = Field(ge=0, le=100, description="percent of the state dir's filesystem used")
    memory_used: int = Field(0, ge=0, description="bytes")
    memory_total: int = Field(0, ge=0, description="bytes")
    disk_used: int = Field(0, ge=0, description="bytes")
    disk_total: int = Field(0, ge=0, description="bytes")
    temperature: float | None = Field(
        None, ge=-100, le=250, description="hottest thermal zone, °C; none where the board has none"
    )
    net_rx: int = Field(0, ge=0, description="bytes received on all interfaces but loopback")
    net_tx: int = Field(0, ge=0, description="bytes sent on all interfaces but loopback")
    uptime: float = Field(0, ge=0, description="seconds since the device booted")


class LogLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time: float | None = Field(None, description="when the workload wrote it, if known")
    stream: str = Field("stdout", pattern="^(stdout|stderr)$")
    text: str = Field(max_length=MAX_LINE_CHARS)
