"""Calls about the agent software itself: the releases the server holds and
over-the-air upgrades of the fleet's agents."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from edgefleet.client.models import AgentRelease, AgentUpgrade
from edgefleet.client.transport import JSON, Transport, compact


class AgentCalls(Transport):
    def upload_agent_release(self, wheel: str | Path, version: str) -> AgentRelease:
        """Upload an agent wheel (administrators only: Forbidden otherwise); its
        SHA-256 is computed here and checked by the server. Answers the release
        (``id``, ``version``, ``sha256``); Conflict if the version exists."""
        data = Path(wheel).read_bytes()
        return self._send(
            AgentRelease,
            "POST",
            "/agent-releases",
            params={"version": version, "sha256": hashlib.sha256(data).hexdigest()},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    def agent_releases(self) -> list[AgentRelease]:
        """The agent releases the server holds."""
        return self._all(AgentRelease, "/agent-releases")

    def upgrade_agents(
        self,
        version: str,
        *,
        devices: list[str] | None = None,
        selector: str | None = None,
        project: str | None = None,
        max_parallel: int = 1,
        deadline: float | None = None,
    ) -> AgentUpgrade:
        """Roll agent ``version`` out to ``devices`` (ids or names) or a label ``selector``,
        ``max_parallel`` at a time; answers the rollout (``id``, ``state``, ``devices``).
        NotFound for a version the server does not hold."""
        body: JSON = {"version": version, "max_parallel": max_parallel}
        body.update(compact(devices=devices, selector=selector, project=project, deadline=deadline))
        return self._send(AgentUpgrade, "POST", "/devices/upgrade-agent", body)

    def agent_upgrade(self, upgrade_id: str) -> AgentUpgrade:
        """One rollout with each device's state and, for a failure, its reason."""
        return self._get(AgentUpgrade, f"/agent-upgrades/{upgrade_id}")

    def wait_agent_upgrade(self, upgrade_id: str, timeout: float = 900.0) -> AgentUpgrade:
        """Poll a rollout until it is ``done`` or ``failed`` (or ``timeout`` passes:
        then it answers the rollout still ``running``, it does not raise)."""
        until = time.monotonic() + timeout
        while True:
            upgrade = self.agent_upgrade(upgrade_id)
            if upgrade["state"] != "running" or time.monotonic() > until:
                return upgrade
            time.sleep(1.0)
