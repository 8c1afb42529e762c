"""The running agent's side of an upgrade: take the order, install, hand over;
and, in the new version, say it is healthy once the server has welcomed it."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Mapping

from edgefleet import __version__
from edgefleet.agent.errors import AgentError
from edgefleet.agent.part import AgentContext, CommandHandler
from edgefleet.agent.upgrade.state import (
    Paths,
    clear_pending,
    read_pending,
    write_report,
)
from edgefleet.wire.commands import UpgradeAnswer, UpgradeArgs
from edgefleet.wire.messages import FactsChanged
from edgefleet.wire.upgrade import UpgradeOrder, UpgradeReport

log = logging.getLogger("edgefleet.agent.upgrade")


class UpgradeRefused(AgentError):
    pass


class UpgradePart:
    """The ``upgrade-agent`` command, and the health check after each welcome."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.paths = Paths(ctx.settings.state_dir)
        self.busy = False

    def command_handlers(self) -> Mapping[str, CommandHandler]:
        return {"upgrade-agent": self.upgrade}

    async def on_connected(self) -> None:
        """Welcomed by the server: if this version is on trial, it passed."""
        pending = read_pending(self.paths)
        if pending is None or pending.version != __version__:
            return
        write_report(
            self.paths,
            UpgradeReport(
                version=__version__,
                state="healthy",
                from_version=pending.from_version,
                attempt=pending.attempt,
            ),
        )
        clear_pending(self.paths)  # the watchdog sees this and leaves
        log.info("upgrade to %s healthy (from %s)", __version__, pending.from_version)
        self._remove_old_versions(keep={__version__, pending.from_version})
        await self._send_facts()

    async def upgrade(self, order: UpgradeArgs) -> UpgradeAnswer:
        if order.version == __version__:
            return UpgradeAnswer(accepted=False, already=True, version=__version__)
        if self.busy or read_pending(self.paths) is not None:
            raise UpgradeRefused("an upgrade is already in progress on this device")
        self.busy = True
        self.ctx.spawn(self._run(order), "upgrade")
        return UpgradeAnswer(accepted=True, version=order.version, from_version=__version__)

    async def _run(self, order: UpgradeOrder) -> None:
        # Downloading, installing and switching load with the first upgrade: an
        # agent keeps for months what it imports (issue 18).
        from edgefleet.agent.upgrade import install
        from edgefleet.agent.upgrade.launch import switch

        connection, identity = self.ctx.connection, self.ctx.identity
        self._report(order, "installing")
        try:
            wheel = await asyncio.to_thread(
                install.download,
                connection.server,
                identity.credential,
                order,
                self.paths.downloads,
                self.ctx.settings.upgrade_max_bytes,
                self.ctx.ssl_context,
            )
            python = await asyncio.to_thread(install.install, self.paths, order.version, wheel)
            wheel.unlink(missing_ok=True)
        except install.InstallError as exc:
            log.error("upgrade to %s failed: %s", order.version, exc)
            self.busy = False
            self._report(order, "failed", str(exc))
            await self._send_facts()
            return
        self._report(order, "switching")
        log.warning("switching the agent to %s", order.version)
        self.ctx.request_restart(lambda: switch(self.paths, order, python))

    def _report(self, order: UpgradeOrder, state: str, reason: str = "") -> None:
        write_report(
            self.paths,
            UpgradeReport.model_validate(
                {
                    "version": order.version,
                    "state": state,
                    "from_version": __version__,
                    "reason": reason,
                    "attempt": order.attempt,
                }
            ),
        )

    async def _send_facts(self) -> None:
        await self.ctx.connection.send(FactsChanged(facts=self.ctx.facts()))

    def _remove_old_versions(self, keep: set[str]) -> None:
        """Keep the running version and the one before it (the way back)."""
        if not self.paths.versions.is_dir():
            return
        for entry in self.paths.versions.iterdir():
            if entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)
