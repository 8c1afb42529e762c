"""Everything a request handler or background task may reach, built once at
start-up by :func:`edgefleet.server.assembly.build` and held on ``app.state``.

Every field is typed. The parts that are built from the context itself (the
hub, the scheduler, the computations relay, the workload render step) are
declared here as small Protocols of what their users call, so this module
imports none of them: a service reads ``ctx.hub`` as a
:class:`~edgefleet.server.devices_link.DeviceLink` without ever importing the
gateway, and the context never joins an import cycle with the services that
read it. Nothing outside the assembly assigns a field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from edgefleet.server.bus.base import Bus
from edgefleet.server.settings import ServerSettings

if TYPE_CHECKING:
    from edgefleet.server.auth.oidc_provider import OidcProvider
    from edgefleet.server.computations.orchestrator import Orchestrator
    from edgefleet.server.computations.plan import Plan
    from edgefleet.server.computations.schemas import ComputationIn
    from edgefleet.server.devices_link import DeviceLink
    from edgefleet.server.events.service import EventLog
    from edgefleet.server.limits import Limits
    from edgefleet.server.projects.tables import Project
    from edgefleet.server.registries.crypto import SecretBox
    from edgefleet.wire.messages import DesiredState

RegistryLogins = dict[str, dict[str, str]]
"""registry host -> {"username", "password", "serveraddress"}"""
DesiredStates = dict[int, tuple[str, "DesiredState"]]
"""device pk -> (device id, desired state), as :mod:`~edgefleet.server.jobs.desired` builds them"""


class RegistryAuth(Protocol):
    """Registry logins for jobs' desired state, and the box that seals secrets at
    rest (:class:`edgefleet.server.registries.service.RegistryAuth`)."""

    @property
    def box(self) -> SecretBox: ...

    async def __call__(
        self, db: AsyncSession, project_pks: set[int]
    ) -> dict[int, RegistryLogins]: ...


class WorkloadRender(Protocol):
    """Variables, secrets and configs laid over desired states
    (:class:`edgefleet.server.variables.render.WorkloadConfig`)."""

    @property
    def box(self) -> SecretBox: ...

    async def __call__(
        self, db: AsyncSession, states: DesiredStates, held: bool = True
    ) -> None: ...


class FleetReconciler(Protocol):
    """Re-place selector jobs (:class:`edgefleet.server.scheduler.loop.Scheduler`)."""

    async def reconcile_projects(self, project_pks: set[int] | None) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Computations(Protocol):
    """This replica's federated computations
    (:class:`edgefleet.server.computations.relay.Relay`)."""

    @property
    def running(self) -> Mapping[str, Orchestrator]: ...

    def launch(
        self, computation_id: str, plan: Plan, project: Project, body: ComputationIn, actor: str
    ) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class ServerContext:
    """The server's infrastructure and long-lived parts.

    The first fields are given at construction; the rest are set by the
    assembly, in its stated order, before the app serves a request.
    ``oidc`` is None when single sign-on is off (no ``--oidc-issuer``).
    """

    settings: ServerSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: Bus
    events: EventLog
    limits: Limits  # throttles, stream slots, worker threads
    registry_auth: RegistryAuth  # also holds the server's key (``registry_auth.box``)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    oidc: OidcProvider | None = None  # single sign-on, when configured
    # Built from the context itself, so set right after it (assembly.build):
    hub: DeviceLink = field(init=False)
    workload_config: WorkloadRender = field(init=False)
    scheduler: FleetReconciler = field(init=False)
    computations: Computations = field(init=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @property
    def replica(self) -> str:
        return self.settings.replica_id
