"""Authenticating an API token: the caller it stands for, read in one statement
(every API request starts here, and each statement waits a turn of a busy
event loop), with the user's roles in every project it is a member of."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.auth import service
from edgefleet.server.auth.roles import Role
from edgefleet.server.db.base import new_id
from edgefleet.server.errors import Unauthorized
from edgefleet.server.projects.tables import Membership, Project
from tests.support.statements import recorded


async def test_a_token_is_its_user_with_every_membership_in_one_statement(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as db:
        member = await service.create_user(db, "ada", password=None, is_admin=False)
        loner = await service.create_user(db, "bob", password=None, is_admin=False)
        projects = [Project(id=new_id("p"), name=f"p{i}") for i in range(3)]
        db.add_all(projects)
        await db.flush()
        db.add(Membership(project_pk=projects[0].pk, user_pk=member.pk, role="developer"))
        db.add(Membership(project_pk=projects[2].pk, user_pk=member.pk, role="viewer"))
        await db.commit()
        _, member_secret = await service.create_token(db, member, name="t", expires_at=None)
        _, loner_secret = await service.create_token(db, loner, name="t", expires_at=None)

    async with sessions() as db:
        with recorded(db.bind.sync_engine) as statements:  # type: ignore[union-attr]
            caller = await service.authenticate(db, member_secret)
        reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert len(reads) == 1, statements
        alone = await service.authenticate(db, loner_secret)
    assert caller.name == "ada"
    assert caller.roles == {projects[0].pk: Role.DEVELOPER, projects[2].pk: Role.VIEWER}
    assert alone.name == "bob" and alone.roles == {}


async def test_an_unknown_token_is_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as db:
        with pytest.raises(Unauthorized, match="invalid token"):
            await service.authenticate(db, "ef_" + "x" * 40)
