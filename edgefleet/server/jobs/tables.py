from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ForeignKey,
    String,
    Table,
    Text,
    UniqueConstraint,
    Update,
    bindparam,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, Keyed, PkType, utcnow


class Job(Keyed, Base):
    """An application version deployed to devices (ids or a label selector).

    ``resolved`` is the normalized spec interpolated with the job's
    environment, computed once when the job (or its version) is set, so every
    device receives exactly the same thing and no agent parses Compose.
    """

    __tablename__ = "jobs"

    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.pk", ondelete="CASCADE"), index=True
    )
    application_pk: Mapped[int] = mapped_column(
        ForeignKey("applications.pk", ondelete="CASCADE"), index=True
    )
    version_pk: Mapped[int] = mapped_column(ForeignKey("app_versions.pk", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128), default="")
    target_devices: Mapped[list[Any] | None] = mapped_column(default=None)
    selector: Mapped[str | None] = mapped_column(String(1024), default=None)
    environment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    resolved: Mapped[dict[str, Any]] = mapped_column(default=dict)
    start: Mapped[datetime | None] = mapped_column(default=None, index=True)
    end: Mapped[datetime | None] = mapped_column(default=None, index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class JobDevice(Base):
    """One job on one device: whether it is assigned there, and how it stands."""

    __tablename__ = "job_devices"
    __table_args__ = (UniqueConstraint("job_pk", "device_pk"),)

    pk: Mapped[int] = mapped_column(PkType, primary_key=True, autoincrement=True)
    job_pk: Mapped[int] = mapped_column(ForeignKey("jobs.pk", ondelete="CASCADE"), index=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.pk", ondelete="CASCADE"), index=True)
    assigned: Mapped[bool] = mapped_column(Boolean, default=True)
    eligible: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    services: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[str | None] = mapped_column(String(64), default=None)
    target_version: Mapped[str | None] = mapped_column(String(64), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    waiting: Mapped[str | None] = mapped_column(Text, default=None)  # e.g. on an update lock


def job_device_update(*columns: str) -> Update:
    """An UPDATE of job device rows by primary key for a Core executemany: each
    parameter dict holds ``row_pk`` and ``new_<column>`` for ``columns``. Many
    rows at once (a fan-out's assignment, a status flush) without the ORM bulk
    update's per-row bookkeeping."""
    rows = cast(Table, JobDevice.__table__)
    values: dict[str, Any] = {column: bindparam(f"new_{column}") for column in columns}
    return update(rows).where(rows.c.pk == bindparam("row_pk")).values(values)
