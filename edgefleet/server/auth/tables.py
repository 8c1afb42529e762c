from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, Keyed


class User(Keyed, Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("ux_users_external", "external_issuer", "external_subject", unique=True),
    )

    name: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Single sign-on (server/auth/oidc_*.py): who this user is at the provider, if anyone.
    external_issuer: Mapped[str | None] = mapped_column(String(255), default=None)
    external_subject: Mapped[str | None] = mapped_column(String(255), default=None)


class ApiToken(Keyed, Base):
    """An API token. Only its SHA-256 is stored; ``prefix`` lets a user tell tokens apart."""

    __tablename__ = "api_tokens"

    user_pk: Mapped[int] = mapped_column(ForeignKey("users.pk", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(16), default="api", doc="api | session")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
