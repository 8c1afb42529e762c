"""Single sign-ons under way, kept in the database so any replica can finish one.

A row is made when a browser is sent to the provider and deleted when the
provider sends it back (so a state, and with it a nonce, is good once). For
``edgefleet login --sso`` the row lives on a little longer, holding the
one-time code the CLI redeems for its API token; a device sign-in (RFC 8628)
keeps the provider's device code under a handle only the CLI knows. Secrets are stored as
SHA-256 digests, except the nonce and PKCE verifier, which are useless after
the row is gone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, PkType, utcnow


class OidcFlow(Base):
    __tablename__ = "oidc_flows"

    pk: Mapped[int] = mapped_column(PkType, primary_key=True, autoincrement=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser_hash: Mapped[str] = mapped_column(
        String(64), doc="digest of the cookie that binds the sign-in to the browser that began it"
    )
    nonce: Mapped[str] = mapped_column(String(64))
    verifier: Mapped[str] = mapped_column(
        String(2048), doc="PKCE code verifier (to the provider), or a device sign-in's device code"
    )
    next_url: Mapped[str] = mapped_column(String(2048), default="/")
    kind: Mapped[str] = mapped_column(String(8), default="portal", doc="portal | cli | device")
    cli_port: Mapped[int | None] = mapped_column(Integer, default=None, doc="0: paste the code")
    cli_state: Mapped[str | None] = mapped_column(String(128), default=None)
    cli_challenge: Mapped[str | None] = mapped_column(String(64), default=None)
    grant_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    user_pk: Mapped[int | None] = mapped_column(
        ForeignKey("users.pk", ondelete="CASCADE"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
