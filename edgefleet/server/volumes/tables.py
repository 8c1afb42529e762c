"""Project volumes at rest: the names a project declared. The data lives on
the devices, in an engine volume named ``ef-proj-<project id>-<name>``."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, Keyed


class ProjectVolume(Keyed, Base):
    """A volume any job or instance of the project may mount; created on a
    device the first time a job there mounts it, and kept across jobs."""

    __tablename__ = "project_volumes"
    __table_args__ = (UniqueConstraint("project_pk", "name"),)

    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.pk", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64), default="")
