from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, Keyed, PkType


class Reservation(Keyed, Base):
    """Devices booked by a project from ``start`` to ``end``; the devices it
    got are its :class:`ReservationDevice` rows (what was asked for is kept
    for display: a selector, a count, a spread label)."""

    __tablename__ = "reservations"

    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.pk", ondelete="CASCADE"), index=True
    )
    start: Mapped[datetime] = mapped_column(index=True)
    end: Mapped[datetime] = mapped_column(index=True)
    exclusive: Mapped[bool] = mapped_column(Boolean, default=True)
    selector: Mapped[str | None] = mapped_column(String(1024), default=None)
    count: Mapped[int | None] = mapped_column(Integer, default=None)
    spread: Mapped[str | None] = mapped_column(String(128), default=None)
    created_by: Mapped[str] = mapped_column(String(64), default="")


class ReservationDevice(Base):
    __tablename__ = "reservation_devices"
    __table_args__ = (UniqueConstraint("reservation_pk", "device_pk"),)

    pk: Mapped[int] = mapped_column(PkType, primary_key=True, autoincrement=True)
    reservation_pk: Mapped[int] = mapped_column(
        ForeignKey("reservations.pk", ondelete="CASCADE"), index=True
    )
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.pk", ondelete="CASCADE"), index=True)


class ReservationJob(Base):
    """A job that named a reservation: it runs only on its devices, only inside its window."""

    __tablename__ = "reservation_jobs"

    job_pk: Mapped[int] = mapped_column(ForeignKey("jobs.pk", ondelete="CASCADE"), primary_key=True)
    reservation_pk: Mapped[int] = mapped_column(
        ForeignKey("reservations.pk", ondelete="CASCADE"), index=True
    )
