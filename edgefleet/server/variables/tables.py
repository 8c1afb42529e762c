"""Variables: project-wide (optionally scoped by a label selector) and per device."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, Keyed, utcnow


class ProjectVariable(Keyed, Base):
    """A project variable. With a ``selector`` it applies only to the project's
    devices whose labels match it; ``selector`` is written
    canonically (``k=v,k2=v2``, ``""`` for none), so one name may hold one
    value per selector."""

    __tablename__ = "project_variables"
    __table_args__ = (UniqueConstraint("project_pk", "name", "selector"),)

    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.pk", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    selector: Mapped[str] = mapped_column(String(1024), default="")
    value: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeviceVariable(Keyed, Base):
    """A variable of one device: the highest precedence."""

    __tablename__ = "device_variables"
    __table_args__ = (UniqueConstraint("device_pk", "name"),)

    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.pk", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    value: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
