"""Datasets devices reported, and computations (the audit of every request)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, Keyed, PkType, utcnow


class FedDataset(Base):
    """One dataset on one device, as its agent last described it: schema, rounded
    size and the owner's policy. Replaced whole by each report; never a value."""

    __tablename__ = "fed_datasets"
    __table_args__ = (UniqueConstraint("device_pk", "name"),)

    pk: Mapped[int] = mapped_column(PkType, primary_key=True, autoincrement=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.pk", ondelete="CASCADE"), index=True)
    project_pk: Mapped[int] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    source: Mapped[str] = mapped_column(String(16))
    columns: Mapped[list[Any]] = mapped_column(default=list)
    rows_approx: Mapped[int] = mapped_column(default=0)
    bytes_approx: Mapped[int] = mapped_column(default=0)
    allow_projects: Mapped[list[Any]] = mapped_column(default=list)
    allow_ops: Mapped[list[Any]] = mapped_column(default=list)
    min_parties: Mapped[int] = mapped_column(Integer, default=3)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    privacy: Mapped[dict[str, Any] | None] = mapped_column(default=None)  # DatasetPrivacy


class Computation(Keyed, Base):
    """One request for an aggregate, kept for good as its audit record: who asked,
    for what, on which devices, and what was released (``result``) or why not.

    ``state``: running -> done | failed; ``refused`` for a request turned down
    before anything was sent to a device (the API answered 4xx)."""

    __tablename__ = "computations"

    project_pk: Mapped[int] = mapped_column(index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    dataset: Mapped[str] = mapped_column(String(128))
    op: Mapped[str] = mapped_column(String(16))
    column: Mapped[str] = mapped_column(String(256))
    bins: Mapped[list[Any] | None] = mapped_column(default=None)
    query: Mapped[dict[str, Any] | None] = mapped_column(default=None)  # schemas.Query
    target_devices: Mapped[list[Any] | None] = mapped_column(default=None)
    selector: Mapped[str | None] = mapped_column(String(1024), default=None)
    invited: Mapped[list[Any]] = mapped_column(default=list)
    threshold: Mapped[int] = mapped_column(Integer, default=0)
    round_timeout: Mapped[float] = mapped_column(Float, default=30.0)
    state: Mapped[str] = mapped_column(String(16), default="running", index=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    participants: Mapped[list[Any]] = mapped_column(default=list)
    parties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    replica: Mapped[str] = mapped_column(String(128), default="")
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
