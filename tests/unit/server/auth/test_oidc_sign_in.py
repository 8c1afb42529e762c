"""Sign-in bookkeeping on a real database, without a provider: users by
(issuer, subject), roles re-applied, the cap on sign-ins under way."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.auth.oidc_config import OidcConfig, parse_role_map
from edgefleet.server.auth.oidc_provider import Identity
from edgefleet.server.auth.oidc_service import make_room, sign_in
from edgefleet.server.auth.oidc_tables import OidcFlow
from edgefleet.server.auth.tables import User
from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.errors import TooManyRequests
from edgefleet.server.projects.tables import Project

ISSUER = "https://idp.example.org"


def config(role_map: str = "", max_pending: int = 10) -> OidcConfig:
    return OidcConfig(
        issuer=ISSUER,
        client_id="edgefleet",
        client_secret=None,
        scopes=("openid",),
        groups_claim="groups",
        username_claim="preferred_username",
        role_map=parse_role_map(role_map),
        max_pending=max_pending,
    )


def who(sub: str, **claims: object) -> Identity:
    return Identity(issuer=ISSUER, subject=sub, claims={"sub": sub, **claims})


async def test_one_user_per_subject_and_roles_follow_groups(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cfg = config("physics=lab:developer,ops=lab:owner")
    async with sessions() as db:
        db.add(Project(id=new_id("p"), name="lab"))
        await db.commit()
        first = await sign_in(db, cfg, who("s-1", preferred_username="ann", groups=["ops"]), "t")
        assert first.created and first.roles == {"lab": "owner"} and not first.groups_missing
        again = await sign_in(db, cfg, who("s-1", preferred_username="ann2", groups="physics"), "t")
        assert not again.created and again.user.pk == first.user.pk
        assert again.user.name == "ann" and again.roles == {"lab": "developer"}
        gone = await sign_in(db, cfg, who("s-1"), "t")
        assert gone.groups_missing and gone.roles == {}
        users = (await db.scalars(select(User).where(User.external_subject == "s-1"))).all()
        assert len(users) == 1 and users[0].password_hash is None


async def test_sign_ins_under_way_are_capped(sessions: async_sessionmaker[AsyncSession]) -> None:
    cfg = config(max_pending=2)
    async with sessions() as db:
        expired = utcnow() - timedelta(seconds=1)
        for n in range(5):  # expired rows are forgotten, not counted
            db.add(
                OidcFlow(
                    state_hash=f"old{n}", browser_hash="", nonce="", verifier="", expires_at=expired
                )
            )
        await db.commit()
        for n in range(2):
            await make_room(db, cfg)
            db.add(
                OidcFlow(
                    state_hash=f"new{n}",
                    browser_hash="",
                    nonce="",
                    verifier="",
                    expires_at=utcnow() + timedelta(minutes=5),
                )
            )
            await db.commit()
        with pytest.raises(TooManyRequests):
            await make_room(db, cfg)
