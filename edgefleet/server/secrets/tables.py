"""Project secrets at rest: the value sealed with the server's key, never clear."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, Keyed, utcnow


class ProjectSecret(Keyed, Base):
    """One named secret of a project. ``sealed`` is the value encrypted with the
    server's key (:mod:`edgefleet.server.registries.crypto`); the API never
    returns it. ``version`` grows by one at every rotation: it is what a job's
    revision sees, so a rotation redeploys the services that use the secret."""

    __tablename__ = "project_secrets"
    __table_args__ = (UniqueConstraint("project_pk", "name"),)

    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.pk", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    sealed: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
