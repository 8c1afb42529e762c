"""What owners did on their devices through the agent's local API.

    agent --LocalActions (<= 200, oldest first)--> LocalActionIngest.on_actions
        each action not stored yet (by its id, per device)   -> a device event
              kind "device.local_action", job_id when it is one of the project's jobs
        commit --> LocalActionsAck(ids) --> the agent forgets them

Actions made while the server was away arrive when the device reconnects. A
repeated report (the ack was lost) stores nothing twice: the ids already in
the device's recent local-action events are skipped. Local app actions carry
no job id (a local app is not a server job) but name it in the message.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.agent_session import AgentSession, DeviceRef
from edgefleet.server.context import ServerContext
from edgefleet.server.events.tables import Event
from edgefleet.server.jobs.tables import Job
from edgefleet.wire.local import LOCAL_APP_PREFIX, LocalAction
from edgefleet.wire.messages import LocalActions, LocalActionsAck
from edgefleet.wire.schedule import utc

log = logging.getLogger(__name__)

KIND = "device.local_action"


def describe(device: DeviceRef, action: LocalAction) -> str:
    what = {
        "restart": "restarted",
        "stop": "stopped (held locally)",
        "start": "started",
        "app-run": "ran local app",
        "app-remove": "removed local app",
    }[action.action]
    target = f"{action.service} of {action.job_id}" if action.service else action.job_id
    return f"owner on {device.name} {what} {target} on the device"


async def store(db: AsyncSession, device: DeviceRef, actions: list[LocalAction]) -> list[str]:
    """Store the actions not stored yet as device events, commit; returns every id."""
    oldest = min(utc(a.time) for a in actions) - timedelta(minutes=1)
    seen: set[str] = set()
    for data in await db.scalars(
        select(Event.data).where(
            Event.device_id == device.id, Event.kind == KIND, Event.time >= oldest
        )
    ):
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            seen.add(data["id"])
    job_ids = {a.job_id for a in actions if not a.job_id.startswith(LOCAL_APP_PREFIX)}
    known = set(
        await db.scalars(
            select(Job.id).where(Job.id.in_(job_ids), Job.project_pk == device.project_pk)
        )
    )
    for action in actions:
        if action.id in seen:
            continue
        seen.add(action.id)
        db.add(
            Event(
                time=utc(action.time),
                project_pk=device.project_pk,
                kind=KIND,
                device_id=device.id,
                job_id=action.job_id if action.job_id in known else None,
                actor="device-owner",
                message=describe(device, action)[:1024],
                data=action.model_dump(mode="json"),
            )
        )
    await db.commit()
    return [a.id for a in actions]


class LocalActionIngest:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    async def on_actions(self, session: AgentSession, message: LocalActions) -> None:
        if not message.actions:
            return
        try:
            async with self.ctx.session() as db:
                ids = await store(db, session.device, message.actions)
        except SQLAlchemyError:
            # Not acknowledged: the agent keeps them and sends them again.
            log.exception("storing local actions from %s failed", session.device.id)
            return
        await session.send(LocalActionsAck(ids=ids))


async def start(ctx: ServerContext) -> None:
    """Feature start hook: take local-action reports from agents."""
    ctx.hub.on(LocalActions, LocalActionIngest(ctx).on_actions)
