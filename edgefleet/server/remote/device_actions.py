"""Device actions: restart the agent, reboot the device (confirmed), identify.
The HTTP route is in :mod:`.actions`; the portal calls :func:`perform` too."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
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

Action = Literal["restart", "reboot", "identify"]
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


async def perform(
    ctx: ServerContext,
    db: AsyncSession,
    caller: Caller,
    device: str,
    action: Action,
    body: ActionIn | None = None,
) -> dict[str, Any]:
    """Ask the device to do ``action`` and wait (30 s) for its answer; reboot needs
    ``confirm``. Identify is for any member, the others for device managers."""
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
