"""A job's rollout: its settings and, while a version change is staged, its progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, utcnow


class JobRollout(Base):
    """One row per job that has a ``rollout`` block.

    ``state`` is ``idle`` until a version or configuration change starts a
    staged rollout; while it is ``rolling`` or ``paused``, devices not yet
    moved keep ``from_version`` / ``from_resolved`` (see :mod:`.pins`) and,
    for a configuration change, the previous secrets/variables kept in
    ``progress["held"]`` (:mod:`.inputs`; after a revert or abort, every
    device keeps them). ``progress`` is the pure state machine's state
    (:mod:`.machine`).
    """

    __tablename__ = "job_rollouts"

    job_pk: Mapped[int] = mapped_column(ForeignKey("jobs.pk", ondelete="CASCADE"), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="idle", index=True)
    from_version_pk: Mapped[int | None] = mapped_column(
        ForeignKey("app_versions.pk", ondelete="SET NULL"), default=None
    )
    from_version: Mapped[str | None] = mapped_column(String(64), default=None)
    to_version: Mapped[str | None] = mapped_column(String(64), default=None)
    from_resolved: Mapped[dict[str, Any]] = mapped_column(default=dict)
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    locks_overridden_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
