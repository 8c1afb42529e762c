from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, Keyed


class Application(Keyed, Base):
    __tablename__ = "applications"
    __table_args__ = (UniqueConstraint("project_pk", "name"),)

    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.pk", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(1024), default="")


class AppVersion(Keyed, Base):
    """One immutable version: the Compose source as uploaded (text when given,
    so line numbers and comments survive) and its parsed form."""

    __tablename__ = "app_versions"
    __table_args__ = (UniqueConstraint("application_pk", "version"),)

    application_pk: Mapped[int] = mapped_column(
        ForeignKey("applications.pk", ondelete="CASCADE"), index=True
    )
    version: Mapped[str] = mapped_column(String(64))
    compose: Mapped[str | None] = mapped_column(Text, default=None)
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(64), default="")
