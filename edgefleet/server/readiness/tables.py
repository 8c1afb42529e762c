from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, Keyed


class DeviceRequirement(Keyed, Base):
    """Devices of the project matching ``selector`` must have ``peripherals``."""

    __tablename__ = "device_requirements"

    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.pk", ondelete="CASCADE"), index=True
    )
    selector: Mapped[str] = mapped_column(String(1024), default="")
    peripherals: Mapped[list[Any]] = mapped_column(default=list)
