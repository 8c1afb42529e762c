"""Everything a request handler or background task may reach, built once at
start-up by :func:`edgefleet.server.app.create_app` and held on ``app.state``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from edgefleet.server.bus.base import Bus
from edgefleet.server.settings import ServerSettings

if TYPE_CHECKING:
    from edgefleet.server.auth.oidc_provider import OidcProvider
    from edgefleet.server.events.service import EventLog
    from edgefleet.server.gateway.hub import Hub
    from edgefleet.server.limits import Limits


@dataclass
class ServerContext:
    settings: ServerSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: Bus
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Set during start-up, once the pieces that need the context exist.
    events: EventLog = field(init=False)
    hub: Hub = field(init=False)
    limits: Limits = field(init=False)  # throttles, stream slots, worker threads
    scheduler: Any = field(init=False, default=None)
    registry_auth: Any = field(init=False, default=None)
    workload_config: Any = field(init=False, default=None)  # variables.render.WorkloadConfig
    computations: Any = field(init=False, default=None)  # computations.relay.Relay
    oidc: OidcProvider | None = field(init=False, default=None)  # single sign-on, if on

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @property
    def replica(self) -> str:
        return self.settings.replica_id
