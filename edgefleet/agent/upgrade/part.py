"""The running agent's side of an upgrade: take the order, install, hand over;
and, in the new version, say it is healthy once the server has welcomed it."""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from edgefleet import __version__
from edgefleet.agent.errors import AgentError
from edgefleet.agent.upgrade import install
from edgefleet.agent.upgrade.launch import switch
from edgefleet.agent.upgrade.state import (
    Paths,
    clear_pending,
    read_pending,
    write_report,
)
from edgefleet.wire.upgrade import UpgradeOrder, UpgradeReport

if TYPE_CHECKING:
    from edgefleet.agent.agent import Agent

log = logging.getLogger("edgefleet.agent.upgrade")


class UpgradeRefused(AgentError):
    pass


class UpgradePart:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.paths = Paths(agent.settings.state_dir)
        self.busy = False

    def attach(self) -> None:
        self.agent.commands.handlers["upgrade-agent"] = self.upgrade
        self.agent.on_connected.append(self.connected)

    async def connected(self) -> None:
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

    async def upgrade(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            order = UpgradeOrder.model_validate(args)
        except ValidationError as exc:
            raise UpgradeRefused(f"invalid upgrade order: {exc.errors()[0]['msg']}") from None
        if order.version == __version__:
            return {"accepted": False, "already": True, "version": __version__}
        if self.busy or read_pending(self.paths) is not None:
            raise UpgradeRefused("an upgrade is already in progress on this device")
        self.busy = True
        self.agent.spawn(self._run(order), name="upgrade")
        return {"accepted": True, "version": order.version, "from": __version__}

    async def _run(self, order: UpgradeOrder) -> None:
        connection, identity = self.agent.connection, self.agent.identity
        assert connection is not None and identity is not None
        self._report(order, "installing")
        try:
            wheel = await asyncio.to_thread(
                install.download,
                connection.server,
                identity.credential,
                order,
                self.paths.downloads,
                self.agent.settings.upgrade_max_bytes,
                self.agent.ssl_context(),
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
        self.agent.handover = lambda: switch(self.paths, order, python)
        self.agent.request_restart()

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
        if self.agent.connection is not None:
            from edgefleet.wire.messages import FactsChanged

            await self.agent.connection.send(FactsChanged(facts=self.agent.facts()))

    def _remove_old_versions(self, keep: set[str]) -> None:
        """Keep the running version and the one before it (the way back)."""
        if not self.paths.versions.is_dir():
            return
        for entry in self.paths.versions.iterdir():
            if entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)
