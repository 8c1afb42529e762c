from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, Keyed, utcnow


class RegistryCredential(Keyed, Base):
    """A project's login to one registry host. ``secret`` is the password (or token)
    encrypted with the server's key (:mod:`edgefleet.server.registries.crypto`);
    the API never returns it."""

    __tablename__ = "registry_credentials"
    __table_args__ = (UniqueConstraint("project_pk", "registry"),)

    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.pk", ondelete="CASCADE"), index=True
    )
    host: Mapped[str] = mapped_column("registry", String(255))
    username: Mapped[str] = mapped_column(String(255))
    secret: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
