"""HTTP: provisioning keys (what an agent presents to enroll). Rules, queries and
commits are in :mod:`.service`."""

from __future__ import annotations

from fastapi import APIRouter, Query

from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.keys import service
from edgefleet.server.keys.schemas import KeyCreated, KeyIn, KeyOut
from edgefleet.server.pagination import Page

router = APIRouter(tags=["provisioning keys"])


@router.post("/provisioning-keys", status_code=201, response_model=KeyCreated)
async def create_key(body: KeyIn, caller: CallerDep, db: Db, ctx: Ctx) -> KeyCreated:
    return await service.create_from(ctx, db, caller, body)


@router.get("/provisioning-keys", response_model=Page[KeyOut])
async def list_keys(
    caller: CallerDep,
    db: Db,
    page: Paging,
    project: str | None = Query(None, description="only this project's keys"),
) -> Page[KeyOut]:
    found = await service.listing(db, caller, page, project)
    return Page(items=[await service.key_out(db, k) for k in found.items], next=found.next)


@router.get("/provisioning-keys/{key_id}", response_model=KeyOut)
async def show_key(key_id: str, caller: CallerDep, db: Db) -> KeyOut:
    return await service.key_out(db, await service.find(db, caller, key_id))


@router.delete("/provisioning-keys/{key_id}", response_model=KeyOut)
async def revoke_key(key_id: str, caller: CallerDep, db: Db) -> KeyOut:
    key = await service.revoke(db, caller, await service.find(db, caller, key_id))
    return await service.key_out(db, key)


@router.post("/provisioning-keys/{key_id}/revoke", response_model=KeyOut)
async def revoke_key_post(key_id: str, caller: CallerDep, db: Db) -> KeyOut:
    return await revoke_key(key_id, caller, db)
