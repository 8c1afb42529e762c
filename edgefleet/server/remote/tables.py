from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, PkType, utcnow


class ExecAudit(Base):
    """Every command anyone ran on a device or in a workload: who, when, what, result."""

    __tablename__ = "exec_audit"

    pk: Mapped[int] = mapped_column(PkType, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    user: Mapped[str] = mapped_column(String(64))
    project_pk: Mapped[int] = mapped_column(index=True)
    device_id: Mapped[str] = mapped_column(String(32), index=True)
    job_id: Mapped[str | None] = mapped_column(String(32), default=None)
    service: Mapped[str | None] = mapped_column(String(64), default=None)
    command: Mapped[list[Any]] = mapped_column(default=list)
    interactive: Mapped[bool] = mapped_column(Boolean, default=False)
    exit_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
