"""Alert tables: rules, webhooks, alert instances and the messages owed to webhooks.
API schemas live in :mod:`schemas`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, Keyed, utcnow


class AlertRule(Keyed, Base):
    """``kind`` says what is watched; ``threshold`` (disk %, backlog records) or
    ``for_seconds`` (how long a device must be offline) says when it fires."""

    __tablename__ = "alert_rules"
    __table_args__ = (UniqueConstraint("project_pk", "name"),)

    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.pk", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    threshold: Mapped[float | None] = mapped_column(Float, default=None)
    for_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertWebhook(Keyed, Base):
    """A receiver. ``secret`` is the signing key sealed with the server's key;
    the API shows it once, at creation."""

    __tablename__ = "alert_webhooks"
    __table_args__ = (UniqueConstraint("project_pk", "name"),)

    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.pk", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(Keyed, Base):
    """One alert instance: a rule firing for one subject, until it resolves."""

    __tablename__ = "alerts"

    project_pk: Mapped[int] = mapped_column(
        ForeignKey("projects.pk", ondelete="CASCADE"), index=True
    )
    rule_pk: Mapped[int] = mapped_column(
        ForeignKey("alert_rules.pk", ondelete="CASCADE"), index=True
    )
    subject: Mapped[str] = mapped_column(String(128))
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="firing", index=True)
    value: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)


class AlertDelivery(Base):
    """A message owed to a webhook: one per (alert, webhook, status), so a firing
    alert is announced once and its resolution once."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (UniqueConstraint("alert_pk", "webhook_pk", "status"),)

    pk: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    alert_pk: Mapped[int] = mapped_column(ForeignKey("alerts.pk", ondelete="CASCADE"), index=True)
    webhook_pk: Mapped[int] = mapped_column(
        ForeignKey("alert_webhooks.pk", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    done: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
