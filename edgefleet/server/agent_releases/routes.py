"""``/agent-releases`` (upload: admins; download: devices) and
``/devices/upgrade-agent`` + ``/agent-upgrades`` (rollouts, by project role)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from edgefleet.server.agent_releases import service, upload
from edgefleet.server.agent_releases.schemas import ReleaseOut, UpgradeIn, UpgradeOut
from edgefleet.server.deps import CallerDep, Ctx, Db, Paging, bearer_token
from edgefleet.server.pagination import Page

router = APIRouter(tags=["agent upgrades"])


WHEEL_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "version": {"type": "string"},
                        "sha256": {"type": "string"},
                    },
                }
            },
        },
    }
}


@router.post(
    "/agent-releases", status_code=201, response_model=ReleaseOut, openapi_extra=WHEEL_BODY
)
async def upload_release(
    request: Request,
    caller: CallerDep,
    db: Db,
    ctx: Ctx,
    version: str | None = Query(
        None, description="the release's version (as the agent reports it)"
    ),
    sha256: str | None = Query(None, description="SHA-256 of the wheel, hex"),
) -> ReleaseOut:
    """Upload an agent wheel (admins only): the raw body (``application/octet-stream``)
    or a multipart form with a ``file`` (``version``/``sha256`` as fields or query).
    The wheel must hash to ``sha256`` and fit ``--agent-release-max-bytes``."""
    service.require_admin(caller)  # before reading anything
    wheel = await upload.read(request, version, sha256, ctx.settings.agent_release_max_bytes)
    return service.release_out(await service.publish(ctx, db, caller, wheel))


@router.get("/agent-releases", response_model=Page[ReleaseOut])
async def list_releases(caller: CallerDep, db: Db, paging: Paging) -> Page[ReleaseOut]:
    """Releases the server holds (any signed-in user: versions are not secret)."""
    found = await service.list_releases(db, paging)
    return Page(items=[service.release_out(r) for r in found.items], next=found.next)


@router.get("/agent-releases/{version}/wheel")
async def download_release(version: str, request: Request, db: Db) -> Response:
    """The wheel, for devices (their own credential as the bearer token)."""
    data = await service.wheel_for_device(db, bearer_token(request), version)
    return Response(data, media_type="application/octet-stream")


@router.post("/devices/upgrade-agent", status_code=201, response_model=UpgradeOut)
async def upgrade_agents(body: UpgradeIn, caller: CallerDep, db: Db, ctx: Ctx) -> UpgradeOut:
    """Roll an agent release out to devices in batches of ``max_parallel``; each batch
    must come back healthy before the next; a device that rolls back stops the rest."""
    return await service.upgrade_out(db, await service.start_upgrade(ctx, db, caller, body))


@router.get("/agent-upgrades", response_model=Page[UpgradeOut])
async def list_upgrades(caller: CallerDep, db: Db, paging: Paging) -> Page[UpgradeOut]:
    found = await service.list_upgrades(db, caller, paging)
    return Page(items=[await service.upgrade_out(db, r) for r in found.items], next=found.next)


@router.get("/agent-upgrades/{upgrade}", response_model=UpgradeOut)
async def show_upgrade(upgrade: str, caller: CallerDep, db: Db) -> UpgradeOut:
    """One rollout: its state and each device's (with the reason of a failure)."""
    return await service.upgrade_out(db, await service.find_upgrade(db, caller, upgrade))
