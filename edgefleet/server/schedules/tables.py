"""Tables of periodic jobs: a job's schedule, and the runs devices report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, PkType, utcnow


class JobSchedule(Base):
    """The ``schedule`` of one job (a row only for periodic jobs), beside the
    job rather than in it, so the jobs table stays the same for every job."""

    __tablename__ = "job_schedules"

    job_pk: Mapped[int] = mapped_column(ForeignKey("jobs.pk", ondelete="CASCADE"), primary_key=True)
    cron: Mapped[str] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    overlap: Mapped[str] = mapped_column(String(8), default="skip")


class JobRun(Base):
    """One fire of a periodic job on one device, as the device reported it.
    ``run_id`` is the device's own id for it: a report sent twice is stored once."""

    __tablename__ = "job_runs"
    __table_args__ = (
        UniqueConstraint("device_pk", "run_id"),
        Index("ix_job_runs_job_device", "job_pk", "device_pk"),
    )

    pk: Mapped[int] = mapped_column(PkType, primary_key=True, autoincrement=True)
    job_pk: Mapped[int] = mapped_column(ForeignKey("jobs.pk", ondelete="CASCADE"))
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.pk", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(String(64))
    scheduled: Mapped[datetime] = mapped_column()
    started: Mapped[datetime | None] = mapped_column(default=None)
    finished: Mapped[datetime | None] = mapped_column(default=None)
    exit_code: Mapped[int | None] = mapped_column(Integer, default=None)
    state: Mapped[str] = mapped_column(String(8))
    error: Mapped[str | None] = mapped_column(Text, default=None)
    services: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
