"""Rolling an agent version out in batches: a pure step and the loop that runs it.

One upgrade's devices move through::

    pending --(its batch is next; command accepted)--> upgrading
    upgrading --(online with agent_version == V)-----> healthy
    upgrading --(reports rolled_back/failed, or the deadline + grace passes)--> failed
    pending --(an earlier device failed)--------------> skipped

A batch is ``max_parallel`` devices; the next starts only when every device of
the current one is healthy. One failure stops the rollout (state ``failed``):
a bad release reaches at most one batch. :func:`advance` decides, from what
the devices report, without I/O; :class:`Rollouts` reads the rows, sends the
``upgrade-agent`` commands and writes the result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.agent_releases.tables import AgentRelease, AgentUpgrade
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import utcnow
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.errors import ApiError
from edgefleet.server.scheduler import lease
from edgefleet.tasks import cancel_all
from edgefleet.wire.commands import UPGRADE_AGENT, ReplyError, UpgradeArgs

log = logging.getLogger("edgefleet.server.agent_releases")

LEASE = "agent-upgrades"  # one replica drives the rollouts (scheduler/lease.py)
LEASE_TTL = 10.0
INSTALL_GRACE = (
    300.0  # seconds a device may spend downloading and installing, on top of the deadline
)


@dataclass(frozen=True)
class Seen:
    """What the server knows of one device right now."""

    online: bool
    agent_version: str
    report: dict[str, Any] | None  # facts.upgrade


def advance(
    entries: list[dict[str, Any]],
    version: str,
    attempt: str,
    seen: dict[int, Seen],
    now: float,
    deadline: float,
) -> tuple[list[dict[str, Any]], list[int], str, str]:
    """Returns (new entries, pks to send the command to, upgrade state, error)."""
    out = [dict(e) for e in entries]
    for entry in out:
        if entry["state"] != "upgrading":
            continue
        device = seen.get(entry["pk"])
        report = (device.report if device else None) or {}
        if device is not None and device.online and device.agent_version == version:
            entry["state"] = "healthy"
        elif report.get("attempt") == attempt and report.get("state") in ("rolled_back", "failed"):
            entry["state"], entry["error"] = "failed", str(report.get("reason") or report["state"])
        elif now - float(entry.get("started", now)) > deadline + INSTALL_GRACE:
            entry["state"] = "failed"
            entry["error"] = f"did not come back with agent {version} in time"
    failed = [e for e in out if e["state"] == "failed"]
    if failed:
        for entry in out:
            if entry["state"] == "pending":
                entry["state"] = "skipped"
        first = failed[0]
        error = f"device {first['name']}: {first['error']}"
        busy = any(e["state"] == "upgrading" for e in out)
        return out, [], "running" if busy else "failed", error
    if any(e["state"] == "upgrading" for e in out):
        return out, [], "running", ""
    pending = [e for e in out if e["state"] == "pending"]
    if not pending:
        return out, [], "done", ""
    batch = pending[0]["batch"]
    send = [e["pk"] for e in pending if e["batch"] == batch]
    for entry in out:
        if entry["pk"] in send:
            entry["state"], entry["started"] = "upgrading", now
    return out, send, "running", ""


class Rollouts:
    """The loop over running upgrades (one per server process)."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._task: asyncio.Task[None] | None = None
        self._holding = lease.Holding(LEASE, ctx.replica, LEASE_TTL)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="agent-upgrades")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_all([self._task])  # a loop that had crashed says so here

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.settings.agent_upgrade_interval)
            try:
                await self.tick()
            except (ApiError, OSError, SQLAlchemyError) as exc:  # a hiccup: next tick retries
                log.warning("agent upgrade step failed: %s", exc)

    async def tick(self) -> None:
        """One step of every running upgrade, on the one replica holding the lease."""
        if not await self._holding.hold(self.ctx.session):
            return
        async with self.ctx.session() as db:
            running = list(
                await db.scalars(select(AgentUpgrade).where(AgentUpgrade.state == "running"))
            )
            for upgrade in running:
                await self._step(db, upgrade)

    async def _step(self, db: AsyncSession, upgrade: AgentUpgrade) -> None:
        pks = [e["pk"] for e in upgrade.devices]
        rows = await db.execute(
            select(Device.pk, Device.agent_version, Device.facts, Presence.expires_at)
            .outerjoin(Presence, Presence.device_pk == Device.pk)
            .where(Device.pk.in_(pks))
        )
        now = utcnow()
        seen = {
            pk: Seen(
                online=expires is not None and expires > now,
                agent_version=version,
                report=(facts or {}).get("upgrade"),
            )
            for pk, version, facts, expires in rows.all()
        }
        entries, send, state, error = advance(
            upgrade.devices, upgrade.version, upgrade.id, seen, time.time(), upgrade.deadline
        )
        if send:
            release = await db.scalar(
                select(AgentRelease).where(AgentRelease.version == upgrade.version)
            )
            for entry in entries:
                if entry["pk"] in send:
                    await self._order(entry, upgrade, release)
        if entries != upgrade.devices or state != upgrade.state or error != upgrade.error:
            upgrade.devices, upgrade.state, upgrade.error = entries, state, error
            upgrade.updated_at = utcnow()
            await db.commit()

    async def _order(
        self, entry: dict[str, Any], upgrade: AgentUpgrade, release: AgentRelease | None
    ) -> None:
        """Send one device its command; a refusal fails the device at once."""
        if release is None:
            entry["state"], entry["error"] = (
                "failed",
                f"agent release {upgrade.version} was deleted",
            )
            return
        order = UpgradeArgs(
            version=release.version,
            sha256=release.sha256,
            url=f"/api/v1/agent-releases/{release.version}/wheel",
            size=release.size,
            deadline=upgrade.deadline,
            attempt=upgrade.id,
        )
        try:
            result = await self.ctx.hub.command(entry["id"], UPGRADE_AGENT, order)
        except ApiError as exc:
            entry["state"], entry["error"] = "failed", exc.message
            return
        if not result.ok:
            reason = result.error or "refused"
            if "unknown command" in reason:
                reason = "this agent is too old for over-the-air upgrades; upgrade it by hand once"
            entry["state"], entry["error"] = "failed", reason
            return
        try:
            if UPGRADE_AGENT.reply_of(result.result).already:
                entry["state"] = "healthy"
        except ReplyError as exc:
            entry["state"], entry["error"] = "failed", str(exc)


async def start(ctx: ServerContext) -> Any:
    rollouts = Rollouts(ctx)
    await rollouts.start()
    return rollouts.stop
