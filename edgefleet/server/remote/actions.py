"""Device actions: restart the agent, reboot the device (confirmed), identify."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field

from edgefleet.server.auth.roles import Permission
from edgefleet.server.deps import CallerDep, Ctx, Db
from edgefleet.server.errors import BadGateway, Invalid
from edgefleet.server.remote import targets
from edgefleet.server.schemas import Input
from edgefleet.wire.commands import (
    IDENTIFY,
    REBOOT,
    RESTART_AGENT,
    ActionArgs,
    CommandSpec,
    ReplyError,
)

router = APIRouter(tags=["devices"])

COMMANDS: dict[str, CommandSpec[ActionArgs, Any]] = {
    "restart": RESTART_AGENT,
    "reboot": REBOOT,
    "identify": IDENTIFY,
}


class ActionIn(Input):
    confirm: bool = Field(False, description="required for reboot")
    message: str = Field(
        "", max_length=200, description="identify: marker written to the agent log"
    )


@router.post("/devices/{device}/actions/{action}")
async def device_action(
    device: str,
    action: Literal["restart", "reboot", "identify"],
    caller: CallerDep,
    db: Db,
    ctx: Ctx,
    body: ActionIn | None = None,
) -> dict[str, Any]:
    body = body or ActionIn()
    permission = Permission.READ if action == "identify" else Permission.MANAGE_DEVICES
    target = await targets.device(db, caller, device, permission)
    if action == "reboot" and not body.confirm:
        raise Invalid('rebooting a device needs {"confirm": true}', field="confirm")
    args = ActionArgs(
        confirm=body.confirm, message=body.message or f"identify requested by {caller.name}"
    )
    spec = COMMANDS[action]
    result = await ctx.hub.command(target.id, spec, args, 30)
    ctx.events.record(
        f"device.{action}",
        target.project_pk,
        f"{caller.name} asked device {target.name} to {action}",
        device_id=target.id,
        actor=caller.name,
    )
    if not result.ok:
        raise BadGateway(f"device {target.name} could not {action}: {result.error}")
    try:
        reply = spec.reply_of(result.result)
    except ReplyError as exc:
        raise BadGateway(f"device {target.name} answered {action}: {exc}") from exc
    return {"device": target.id, "action": action, "result": reply.model_dump(by_alias=True)}
