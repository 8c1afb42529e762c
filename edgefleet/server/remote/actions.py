"""HTTP: ``POST /devices/{device}/actions/{action}`` (the work is :mod:`.device_actions`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from edgefleet.server.deps import CallerDep, Ctx, Db
from edgefleet.server.remote.device_actions import Action, ActionIn, perform

router = APIRouter(tags=["devices"])


@router.post("/devices/{device}/actions/{action}")
async def device_action(
    device: str,
    action: Action,
    caller: CallerDep,
    db: Db,
    ctx: Ctx,
    body: ActionIn | None = None,
) -> dict[str, Any]:
    return await perform(ctx, db, caller, device, action, body)
