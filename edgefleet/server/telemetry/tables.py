"""Telemetry tables: raw samples, their downsampled rollups, and workloads'
recent logs kept for offline devices. API schemas live in :mod:`schemas`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, JsonType, PkType


class TelemetrySample(Base):
    """One sample as the agent took it; kept ``--telemetry-raw-hours``, once
    folded into its rollup (``rolled``). Stored once per (device, time)."""

    __tablename__ = "telemetry_samples"
    __table_args__ = (UniqueConstraint("device_pk", "time"),)

    pk: Mapped[int] = mapped_column(PkType, primary_key=True, autoincrement=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.pk", ondelete="CASCADE"))
    time: Mapped[datetime] = mapped_column(index=True)  # retention deletes by time alone
    cpu: Mapped[float] = mapped_column(Float)
    memory: Mapped[float] = mapped_column(Float)
    disk: Mapped[float] = mapped_column(Float)
    memory_used: Mapped[int] = mapped_column(BigInteger, default=0)
    memory_total: Mapped[int] = mapped_column(BigInteger, default=0)
    disk_used: Mapped[int] = mapped_column(BigInteger, default=0)
    disk_total: Mapped[int] = mapped_column(BigInteger, default=0)
    temperature: Mapped[float | None] = mapped_column(Float, default=None)
    net_rx: Mapped[int] = mapped_column(BigInteger, default=0)
    net_tx: Mapped[int] = mapped_column(BigInteger, default=0)
    uptime: Mapped[float] = mapped_column(Float, default=0.0)
    rolled: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class TelemetryRollup(Base):
    """Samples of one device in one ``step``-second bucket: averages, peaks and
    the count they were made of (so late samples can be folded in exactly)."""

    __tablename__ = "telemetry_rollups"

    device_pk: Mapped[int] = mapped_column(
        ForeignKey("devices.pk", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(primary_key=True, index=True)
    count: Mapped[int] = mapped_column(Integer)
    cpu: Mapped[float] = mapped_column(Float)
    memory: Mapped[float] = mapped_column(Float)
    disk: Mapped[float] = mapped_column(Float)
    cpu_max: Mapped[float] = mapped_column(Float)
    memory_max: Mapped[float] = mapped_column(Float)
    disk_max: Mapped[float] = mapped_column(Float)
    temperature: Mapped[float | None] = mapped_column(Float, default=None)
    temperature_count: Mapped[int] = mapped_column(Integer, default=0)
    memory_total: Mapped[int] = mapped_column(BigInteger, default=0)
    disk_total: Mapped[int] = mapped_column(BigInteger, default=0)
    net_rx: Mapped[int] = mapped_column(BigInteger, default=0)
    net_tx: Mapped[int] = mapped_column(BigInteger, default=0)
    uptime: Mapped[float] = mapped_column(Float, default=0.0)


class WorkloadLog(Base):
    """The last lines of one service of one job on one device, as last shipped
    (replaced whole each time; bounded in lines and bytes at ingest)."""

    __tablename__ = "workload_logs"

    device_pk: Mapped[int] = mapped_column(
        ForeignKey("devices.pk", ondelete="CASCADE"), primary_key=True
    )
    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service: Mapped[str] = mapped_column(String(128), primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(index=True)
    lines: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    size: Mapped[int] = mapped_column(Integer, default=0)
