"""What the users-and-tokens API may do for a caller, and the answers it gives.

The rules live here, not in the routes: administrators list, create and
delete users and see everyone's tokens; anyone else sees only themselves
(another user is "not found", not "forbidden", so names do not leak) and
their own tokens. The bootstrap admin cannot be deleted. Sign-in, passwords
and the token rows themselves are :mod:`.service`'s.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth import service
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.schemas import TokenCreated, TokenIn, TokenOut, UserOut
from edgefleet.server.auth.tables import ApiToken, User
from edgefleet.server.db.base import utcnow
from edgefleet.server.errors import Forbidden, Invalid, NotFound
from edgefleet.server.events import audit
from edgefleet.server.pagination import Page, PageParams, keyset_page
from edgefleet.server.projects.tables import Membership, Project


def expiry(at: datetime | None, seconds: int | None) -> datetime | None:
    """When a new secret (API token, provisioning key) expires: a time, or seconds
    from now, not both."""
    if at and seconds:
        raise Invalid("give expires_at or expires_in, not both", field="expires_in")
    return utcnow() + timedelta(seconds=seconds) if seconds else at


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise Forbidden("only administrators may do this")


async def user_out(db: AsyncSession, user: User) -> UserOut:
    rows = await db.execute(
        select(Project.name, Membership.role)
        .join(Membership, Membership.project_pk == Project.pk)
        .where(Membership.user_pk == user.pk)
    )
    return UserOut(
        id=user.id,
        name=user.name,
        admin=user.is_admin,
        created_at=user.created_at,
        has_password=user.password_hash is not None,
        identity_provider=user.external_issuer,
        projects={name: role for name, role in rows.all()},
    )


async def users(db: AsyncSession, caller: Caller, page: PageParams) -> Page[User]:
    require_admin(caller)
    return await keyset_page(db, select(User), User.pk, page)


async def visible_user(db: AsyncSession, caller: Caller, ref: str) -> User:
    """``ref``'s user, if the caller may see it: administrators all, others themselves."""
    user = await service.find_user(db, ref)
    if not caller.is_admin and user.pk != caller.user_pk:
        raise NotFound(f"user {ref!r} not found")
    return user


async def delete_user(db: AsyncSession, caller: Caller, ref: str) -> None:
    require_admin(caller)
    target = await service.find_user(db, ref)
    if target.name == service.ADMIN:
        raise Forbidden("the bootstrap admin cannot be deleted")
    await db.delete(target)
    what = f"{caller.name} deleted user {target.name}"
    audit.record(db, "user.deleted", None, what, actor=caller.name)
    await db.commit()


def token_out(token: ApiToken, user: str, secret: str | None = None) -> TokenOut:
    """The token as listed; with ``secret`` (only just created) as :class:`TokenCreated`."""
    fields = {
        "id": token.id,
        "name": token.name,
        "user": user,
        "prefix": token.prefix,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
        "last_used_at": token.last_used_at,
    }
    return TokenCreated(token=secret, **fields) if secret else TokenOut(**fields)


async def tokens(
    db: AsyncSession, caller: Caller, user: str | None = None, all_users: bool = False
) -> list[TokenOut]:
    """The caller's API tokens; administrators may ask for ``user``'s or everyone's."""
    if (user or all_users) and not caller.is_admin:
        raise Forbidden("only administrators may list other users' tokens")
    owner_pk: int | None = caller.user_pk
    if all_users:
        owner_pk = None
    elif user:
        owner_pk = (await service.find_user(db, user)).pk
    return [token_out(t, name) for t, name in await service.list_tokens(db, owner_pk)]


async def create_token(db: AsyncSession, caller: Caller, body: TokenIn) -> TokenOut:
    """A token for the caller, or (administrators) for ``body.user``; the answer
    carries the secret, once."""
    target = await service.find_user(db, caller.user_id)
    if body.user and body.user not in (caller.name, caller.user_id):
        if not caller.is_admin:
            raise Forbidden("only administrators may create tokens for other users")
        target = await service.find_user(db, body.user)
    expires = expiry(body.expires_at, body.expires_in)
    token, secret = await service.create_token(
        db, target, name=body.name, expires_at=expires, actor=caller.name
    )
    return token_out(token, target.name, secret)


async def revoke_token(db: AsyncSession, caller: Caller, token_id: str) -> TokenOut:
    token = await service.revoke_token(db, caller, token_id)
    owner = await db.scalar(select(User.name).where(User.pk == token.user_pk))
    return token_out(token, owner or "")
