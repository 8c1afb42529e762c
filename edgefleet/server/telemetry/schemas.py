"""API shapes of device telemetry (``GET /devices/{id}/metrics``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from edgefleet.server.telemetry.rollup import Point


class MetricPoint(BaseModel):
    """One sample, or with ``step`` (or for times older than raw samples are
    kept) the average of ``samples`` of them, with their peaks."""

    time: datetime
    cpu: float = Field(description="percent busy")
    memory: float = Field(description="percent of memory in use")
    disk: float = Field(description="percent of the agent's filesystem used")
    temperature: float | None = Field(None, description="°C, hottest zone; null if none")
    net_rx: int = Field(description="bytes received since boot (all interfaces but loopback)")
    net_tx: int = Field(description="bytes sent since boot")
    uptime: float = Field(description="seconds since the device booted")
    memory_used: int
    memory_total: int
    disk_used: int
    disk_total: int
    samples: int = Field(1, description="how many samples this point averages")
    cpu_max: float
    memory_max: float
    disk_max: float

    @classmethod
    def of(cls, point: Point) -> MetricPoint:
        cpu_max, memory_max, disk_max = point.peaks()
        return cls(
            time=point.time,
            cpu=round(point.cpu, 2),
            memory=round(point.memory, 2),
            disk=round(point.disk, 2),
            temperature=None if point.temperature is None else round(point.temperature, 1),
            net_rx=point.net_rx,
            net_tx=point.net_tx,
            uptime=point.uptime,
            memory_used=point.memory_used,
            memory_total=point.memory_total,
            disk_used=point.disk_used,
            disk_total=point.disk_total,
            samples=point.count,
            cpu_max=cpu_max,
            memory_max=memory_max,
            disk_max=disk_max,
        )


class MetricsPage(BaseModel):
    items: list[MetricPoint]
    next: str | None = None
    step: int | None = Field(None, description="seconds per point, if downsampled")
