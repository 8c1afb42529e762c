from __future__ import annotations

from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, Keyed


class DeviceLoan(Keyed, Base):
    """One device lent to one project (``project_pk`` NULL: to everyone).

    ``guest`` repeats the guest project's public id (or ``*``) so the pair
    (device, guest) can be unique on every engine (a NULL never collides)."""

    __tablename__ = "device_loans"
    __table_args__ = (UniqueConstraint("device_pk", "guest"),)

    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.pk", ondelete="CASCADE"), index=True)
    project_pk: Mapped[int | None] = mapped_column(
        ForeignKey("projects.pk", ondelete="CASCADE"), index=True, default=None
    )
    guest: Mapped[str] = mapped_column(String(32))
    rights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expose_labels: Mapped[list[Any]] = mapped_column(default=list)
    time_share: Mapped[float] = mapped_column(Float, default=1.0)
    share_window_hours: Mapped[int] = mapped_column(Integer, default=168)
    created_by: Mapped[str] = mapped_column(String(64), default="")
