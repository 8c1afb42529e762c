"""HTTP: users and API tokens. Who may do what, and the answers' shape, are in
:mod:`.accounts`; sign-in, passwords and token rows in :mod:`.service`."""

from __future__ import annotations

from fastapi import APIRouter, Query

from edgefleet.server.auth import accounts, service
from edgefleet.server.auth.schemas import (
    PasswordIn,
    TokenCreated,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
)
from edgefleet.server.deps import CallerDep, Db, Paging
from edgefleet.server.pagination import Page

router = APIRouter(tags=["users and tokens"])


@router.get("/users", response_model=Page[UserOut])
async def list_users(caller: CallerDep, db: Db, page: Paging) -> Page[UserOut]:
    found = await accounts.users(db, caller, page)
    return Page(items=[await accounts.user_out(db, u) for u in found.items], next=found.next)


@router.post("/users", status_code=201, response_model=UserOut)
async def create_user(body: UserIn, caller: CallerDep, db: Db) -> UserOut:
    accounts.require_admin(caller)
    user = await service.create_user(
        db, body.name, password=body.password, is_admin=body.admin, actor=caller.name
    )
    return await accounts.user_out(db, user)


@router.get("/users/me", response_model=UserOut)
async def me(caller: CallerDep, db: Db) -> UserOut:
    return await accounts.user_out(db, await service.find_user(db, caller.user_id))


@router.get("/users/{user}", response_model=UserOut)
async def show_user(user: str, caller: CallerDep, db: Db) -> UserOut:
    return await accounts.user_out(db, await accounts.visible_user(db, caller, user))


@router.put("/users/{user}/password", status_code=204)
async def set_password(user: str, body: PasswordIn, caller: CallerDep, db: Db) -> None:
    """Your own password needs ``current_password`` (403 when wrong); administrators
    reset others' without it. The user's other portal sessions end."""
    target = await accounts.visible_user(db, caller, caller.user_id if user == "me" else user)
    await service.set_password(db, caller, target, body.password, body.current_password)


@router.delete("/users/{user}", status_code=204)
async def delete_user(user: str, caller: CallerDep, db: Db) -> None:
    await accounts.delete_user(db, caller, user)


@router.get("/tokens", response_model=Page[TokenOut])
async def list_tokens(
    caller: CallerDep,
    db: Db,
    user: str | None = Query(None, description="admins: another user's tokens"),
    all_users: bool = Query(False, alias="all", description="admins: everyone's tokens"),
) -> Page[TokenOut]:
    return Page(items=await accounts.tokens(db, caller, user, all_users))


@router.post("/tokens", status_code=201, response_model=TokenCreated)
async def create_token(body: TokenIn, caller: CallerDep, db: Db) -> TokenOut:
    return await accounts.create_token(db, caller, body)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
async def revoke_token(token_id: str, caller: CallerDep, db: Db) -> TokenOut:
    return await accounts.revoke_token(db, caller, token_id)


@router.post("/tokens/{token_id}/revoke", response_model=TokenOut, include_in_schema=False)
async def revoke_token_post(token_id: str, caller: CallerDep, db: Db) -> TokenOut:
    return await accounts.revoke_token(db, caller, token_id)
