from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, PkType, utcnow


class Event(Base):
    """Something that happened, for humans: the events API, the portal's feed, the audit."""

    __tablename__ = "events"

    pk: Mapped[int] = mapped_column(PkType, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    project_pk: Mapped[int | None] = mapped_column(index=True, default=None)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str | None] = mapped_column(String(32), index=True, default=None)
    job_id: Mapped[str | None] = mapped_column(String(32), index=True, default=None)
    actor: Mapped[str | None] = mapped_column(String(64), default=None)
    message: Mapped[str] = mapped_column(String(1024), default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
