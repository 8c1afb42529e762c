from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Query
from sqlalchemy import select

from edgefleet.server.auth import service
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.schemas import (
    PasswordIn,
    TokenCreated,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
)
from edgefleet.server.auth.tables import ApiToken, User
from edgefleet.server.db.base import utcnow
from edgefleet.server.deps import CallerDep, Db, Paging
from edgefleet.server.errors import Forbidden, Invalid, NotFound
from edgefleet.server.events import audit
from edgefleet.server.pagination import Page, next_cursor
from edgefleet.server.projects.tables import Membership, Project

router = APIRouter(tags=["users and tokens"])


def _require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise Forbidden("only administrators may do this")


async def _user_out(db: Db, user: User) -> UserOut:
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


async def _visible_user(db: Db, caller: Caller, ref: str) -> User:
    user = await service.find_user(db, ref)
    if not caller.is_admin and user.pk != caller.user_pk:
        raise NotFound(f"user {ref!r} not found")
    return user


@router.get("/users", response_model=Page[UserOut])
async def list_users(caller: CallerDep, db: Db, page: Paging) -> Page[UserOut]:
    _require_admin(caller)
    rows = list(
        await db.scalars(
            select(User).where(User.pk > page.after).order_by(User.pk).limit(page.limit + 1)
        )
    )
    items = [await _user_out(db, u) for u in rows[: page.limit]]
    return Page(items=items, next=next_cursor([u.pk for u in rows], page.limit))


@router.post("/users", status_code=201, response_model=UserOut)
async def create_user(body: UserIn, caller: CallerDep, db: Db) -> UserOut:
    _require_admin(caller)
    user = await service.create_user(
        db, body.name, password=body.password, is_admin=body.admin, actor=caller.name
    )
    return await _user_out(db, user)


@router.get("/users/me", response_model=UserOut)
async def me(caller: CallerDep, db: Db) -> UserOut:
    return await _user_out(db, await service.find_user(db, caller.user_id))


@router.get("/users/{user}", response_model=UserOut)
async def show_user(user: str, caller: CallerDep, db: Db) -> UserOut:
    return await _user_out(db, await _visible_user(db, caller, user))


@router.put("/users/{user}/password", status_code=204)
async def set_password(user: str, body: PasswordIn, caller: CallerDep, db: Db) -> None:
    """Your own password needs ``current_password`` (403 when wrong); administrators
    reset others' without it. The user's other portal sessions end."""
    target = await _visible_user(db, caller, caller.user_id if user == "me" else user)
    await service.set_password(db, caller, target, body.password, body.current_password)


@router.delete("/users/{user}", status_code=204)
async def delete_user(user: str, caller: CallerDep, db: Db) -> None:
    _require_admin(caller)
    target = await service.find_user(db, user)
    if target.name == service.ADMIN:
        raise Forbidden("the bootstrap admin cannot be deleted")
    await db.delete(target)
    what = f"{caller.name} deleted user {target.name}"
    audit.record(db, "user.deleted", None, what, actor=caller.name)
    await db.commit()


def _token_out(token: ApiToken, user: str, secret: str | None = None) -> TokenOut:
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


@router.get("/tokens", response_model=Page[TokenOut])
async def list_tokens(
    caller: CallerDep,
    db: Db,
    user: str | None = Query(None, description="admins: another user's tokens"),
    all_users: bool = Query(False, alias="all", description="admins: everyone's tokens"),
) -> Page[TokenOut]:
    if (user or all_users) and not caller.is_admin:
        raise Forbidden("only administrators may list other users' tokens")
    owner_pk: int | None = caller.user_pk
    if all_users:
        owner_pk = None
    elif user:
        owner_pk = (await service.find_user(db, user)).pk
    rows = await service.list_tokens(db, owner_pk)
    return Page(items=[_token_out(t, name) for t, name in rows], next=None)


@router.post("/tokens", status_code=201, response_model=TokenCreated)
async def create_token(body: TokenIn, caller: CallerDep, db: Db) -> TokenOut:
    target = await service.find_user(db, caller.user_id)
    if body.user and body.user not in (caller.name, caller.user_id):
        if not caller.is_admin:
            raise Forbidden("only administrators may create tokens for other users")
        target = await service.find_user(db, body.user)
    if body.expires_at and body.expires_in:
        raise Invalid("give expires_at or expires_in, not both", field="expires_in")
    expires = body.expires_at
    if body.expires_in:
        expires = utcnow() + timedelta(seconds=body.expires_in)
    token, secret = await service.create_token(
        db, target, name=body.name, expires_at=expires, actor=caller.name
    )
    return _token_out(token, target.name, secret)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
async def revoke_token(token_id: str, caller: CallerDep, db: Db) -> TokenOut:
    token = await service.revoke_token(db, caller, token_id)
    owner = await db.scalar(select(User.name).where(User.pk == token.user_pk))
    return _token_out(token, owner or "")


@router.post("/tokens/{token_id}/revoke", response_model=TokenOut, include_in_schema=False)
async def revoke_token_post(token_id: str, caller: CallerDep, db: Db) -> TokenOut:
    return await revoke_token(token_id, caller, db)
