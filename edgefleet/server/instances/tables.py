"""Personal instances at rest: which applications may be launched, whose
instance a job is, and who else may open it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, Keyed, PkType, utcnow


class Launchable(Base):
    """An application its project lets members launch as personal instances,
    with how long an instance may sit without a proxied request."""

    __tablename__ = "launchable_apps"

    pk: Mapped[int] = mapped_column(PkType, primary_key=True, autoincrement=True)
    application_pk: Mapped[int] = mapped_column(
        ForeignKey("applications.pk", ondelete="CASCADE"), unique=True
    )
    idle_timeout: Mapped[int] = mapped_column(default=3600)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Instance(Keyed, Base):
    """A job owned by one user. The job carries the workload (the job machinery
    deploys it); this row says whose it is, when it was last opened through the
    proxy, and why it stopped."""

    __tablename__ = "instances"

    job_pk: Mapped[int] = mapped_column(ForeignKey("jobs.pk", ondelete="CASCADE"), unique=True)
    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.pk", ondelete="CASCADE"), index=True
    )
    owner_pk: Mapped[int] = mapped_column(ForeignKey("users.pk", ondelete="CASCADE"), index=True)
    idle_timeout: Mapped[int] = mapped_column(default=3600)
    last_access: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_reason: Mapped[str | None] = mapped_column(Text, default=None)


class InstanceShare(Base):
    """A user the owner lets open the instance."""

    __tablename__ = "instance_shares"
    __table_args__ = (UniqueConstraint("instance_pk", "user_pk"),)

    pk: Mapped[int] = mapped_column(PkType, primary_key=True, autoincrement=True)
    instance_pk: Mapped[int] = mapped_column(
        ForeignKey("instances.pk", ondelete="CASCADE"), index=True
    )
    user_pk: Mapped[int] = mapped_column(ForeignKey("users.pk", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
