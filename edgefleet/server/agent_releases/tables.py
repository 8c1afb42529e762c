from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column

from edgefleet.server.db.base import Base, Keyed, utcnow


class AgentRelease(Keyed, Base):
    """An uploaded agent wheel. The bytes live in the database so that every
    replica serves them; they are loaded only when a device downloads them."""

    __tablename__ = "agent_releases"

    version: Mapped[str] = mapped_column(String(64), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    wheel: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    created_by: Mapped[str] = mapped_column(String(64), default="")


class AgentUpgrade(Keyed, Base):
    """One rollout of an agent version to a set of devices of one project.

    ``devices`` holds one entry per device, in rollout order: ``{"pk", "id",
    "name", "state", "error", "batch"}`` with state ``pending`` -> ``upgrading``
    -> ``healthy`` | ``failed`` | ``skipped``."""

    __tablename__ = "agent_upgrades"

    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.pk", ondelete="CASCADE"), index=True
    )
    version: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="running")
    max_parallel: Mapped[int] = mapped_column(Integer, default=1)
    deadline: Mapped[float] = mapped_column(Float, default=120.0)
    devices: Mapped[list[Any]] = mapped_column(default=list)
    error: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
