from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Query

from edgefleet.server.db.base import utcnow
from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.errors import Invalid
from edgefleet.server.keys import service
from edgefleet.server.keys.schemas import KeyCreated, KeyIn, KeyOut
from edgefleet.server.keys.tables import ProvisioningKey
from edgefleet.server.pagination import Page, next_cursor
from edgefleet.server.projects import service as projects

router = APIRouter(tags=["provisioning keys"])


async def _out(db: Db, key: ProvisioningKey) -> KeyOut:
    project = (await projects.names(db, {key.project_pk}))[key.project_pk]
    return KeyOut(
        id=key.id,
        name=key.name,
        project=project.name,
        project_id=project.id,
        prefix=key.prefix,
        labels=key.labels,
        created_at=key.created_at,
        created_by=key.created_by,
        expires_at=key.expires_at,
        max_uses=key.max_uses,
        uses=key.uses,
        revoked_at=key.revoked_at,
    )


@router.post("/provisioning-keys", status_code=201, response_model=KeyCreated)
async def create_key(body: KeyIn, caller: CallerDep, db: Db, ctx: Ctx) -> KeyCreated:
    project = await projects.find(db, caller, body.project)
    if body.expires_at and body.expires_in:
        raise Invalid("give expires_at or expires_in, not both", field="expires_in")
    expires = body.expires_at
    if body.expires_in:
        expires = utcnow() + timedelta(seconds=body.expires_in)
    key, secret = await service.create(
        db,
        caller,
        project,
        name=body.name,
        labels=body.labels,
        expires_at=expires,
        max_uses=body.max_uses,
    )
    out = await _out(db, key)
    command = (
        f"edgefleet agent --server {ctx.settings.resolved_public_url()} "
        f"--provisioning-key {secret} --state-dir /var/lib/edgefleet"
    )
    return KeyCreated(**out.model_dump(), key=secret, command=command)


@router.get("/provisioning-keys", response_model=Page[KeyOut])
async def list_keys(
    caller: CallerDep,
    db: Db,
    page: Paging,
    project: str | None = Query(None, description="only this project's keys"),
) -> Page[KeyOut]:
    project_pk = (await projects.find(db, caller, project)).pk if project else None
    rows = await service.list_visible(db, caller, project_pk, page.after, page.limit)
    return Page(
        items=[await _out(db, k) for k in rows[: page.limit]],
        next=next_cursor([k.pk for k in rows], page.limit),
    )


@router.get("/provisioning-keys/{key_id}", response_model=KeyOut)
async def show_key(key_id: str, caller: CallerDep, db: Db) -> KeyOut:
    return await _out(db, await service.find(db, caller, key_id))


@router.delete("/provisioning-keys/{key_id}", response_model=KeyOut)
async def revoke_key(key_id: str, caller: CallerDep, db: Db) -> KeyOut:
    key = await service.revoke(db, caller, await service.find(db, caller, key_id))
    return await _out(db, key)


@router.post("/provisioning-keys/{key_id}/revoke", response_model=KeyOut)
async def revoke_key_post(key_id: str, caller: CallerDep, db: Db) -> KeyOut:
    return await revoke_key(key_id, caller, db)
