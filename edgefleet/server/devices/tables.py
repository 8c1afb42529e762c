from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, Keyed


class Device(Keyed, Base):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("project_pk", "name"),)

    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.pk", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    agent_version: Mapped[str] = mapped_column(String(64), default="")
    credential_hash: Mapped[str] = mapped_column(String(64), unique=True)
    public_key: Mapped[str | None] = mapped_column(Text, default=None)
    enrolled_with: Mapped[str | None] = mapped_column(String(32), default=None)
    last_seen: Mapped[datetime | None] = mapped_column(default=None)
    desired_generation: Mapped[int] = mapped_column(BigInteger, default=0)
    applied_generation: Mapped[int] = mapped_column(BigInteger, default=0)
    runtime_healthy: Mapped[bool] = mapped_column(Boolean, default=True)


class Presence(Base):
    """Which replica holds a device's connection, and until when that is true.

    Written in batches by the gateway, never per heartbeat. A row whose
    ``expires_at`` passed means the holder stopped vouching for it (agent gone
    quiet, or the replica died): the device is offline.
    """

    __tablename__ = "presence"

    device_pk: Mapped[int] = mapped_column(
        ForeignKey("devices.pk", ondelete="CASCADE"), primary_key=True
    )
    replica: Mapped[str] = mapped_column(String(128))
    connected_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
