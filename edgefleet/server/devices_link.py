"""The way services reach devices and hear from their agents: a Protocol.

Services (jobs, remote, computations, data, …) talk to devices through this
seam and never import the gateway's :class:`~edgefleet.server.gateway.hub.Hub`:
only the server's assembly (:mod:`edgefleet.server.assembly`) builds the hub
and puts it on the context as a :class:`DeviceLink`. That keeps the gateway
free to change (and free of import cycles with the services it serves), and
lets a test hand a service any object with these methods.

Nothing of the gateway is imported here: the value a handler receives ("which
agent sent this") is :class:`~edgefleet.server.agent_session.AgentSession`,
which imports nothing of the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.agent_session import AgentSession
from edgefleet.wire.commands import CommandArgs, CommandSpec
from edgefleet.wire.messages import CommandResult, DesiredState, Hello, Message
from edgefleet.wire.mux import Stream


@dataclass(frozen=True)
class LinkCounts:
    """What this replica's side of the link has done, for ``/metrics``."""

    agents: int = 0  # connected now
    frames: int = 0  # received from agents, since start
    frames_deferred: int = 0  # of those, held for a later loop turn (gateway.pacer)
    collections_paced: int = 0  # full collections the hub started itself (heap.Tenure.pace)
    thaws: int = 0  # the frozen fleet given back to the collector (heap.Tenure.thaw)
    connections_admitted: int = 0  # agent handshakes let in by gateway.admission, since start
    connections_refused: int = 0  # told to come back later (close 4503), since start


M = TypeVar("M", bound=Message)
A = TypeVar("A", bound=CommandArgs)

MessageHandler = Callable[[AgentSession, M], Awaitable[None]]
"""Handles one message type an agent sends (``DeviceLink.on``)."""
SessionHook = Callable[[AgentSession, Hello | None], Awaitable[None]]
"""Runs when an agent connects (with its hello) or disconnects (with None)."""
StreamAcceptor = Callable[[AgentSession, Stream], Awaitable[None]]
"""Takes a stream an agent opened, by the ``kind`` in its header."""
FrameHandler = Callable[[AgentSession, bytes], Awaitable[None]]
"""Takes a typed binary frame from an agent (protocol 3+)."""
FleetHook = Callable[[int], Awaitable[None]]
"""Runs when a project's fleet changed (a device joined, left or was relabelled)."""
DesiredSource = Callable[[AsyncSession, int], Awaitable[DesiredState]]
"""What to push to an agent that connects: its device's desired state."""


class DeviceLink(Protocol):
    """Reach any device from any replica, and subscribe to what agents send."""

    @property
    def sessions(self) -> Mapping[str, AgentSession]:
        """The agents connected to this replica, by device id."""
        ...

    @property
    def remote_bus(self) -> bool:
        """Whether other replicas may hold devices (the bus is not in-process)."""
        ...

    def counts(self) -> LinkCounts:
        """Counters read at scrape time (plain ints on the hot path until then)."""
        ...

    # -- reaching devices -------------------------------------------------------------

    async def deliver(self, device_id: str, message: Message) -> bool:
        """Send a control message; False if the device is offline (nothing queued)."""
        ...

    async def command(
        self, device_id: str, spec: CommandSpec[A, Any], args: A, timeout: float = 30.0
    ) -> CommandResult:
        """Run a command on the device and wait for its result (read it with
        ``spec.reply_of(result.result)`` when ``ok``)."""
        ...

    async def open_stream(
        self,
        device_id: str,
        header: dict[str, Any],
        timeout: float = 15.0,
        *,
        first: Callable[[Stream], Awaitable[None]] | None = None,
    ) -> Stream:
        """A stream to the device, once it accepted. ``first(stream)`` runs right
        after the open, before the answer: what it sends travels with the open
        (a proxied request's head, a wider window) and saves a round trip; the
        device drops it if it refuses."""
        ...

    async def kick(self, device_id: str, reason: str) -> None:
        """The device's credential is gone: tell its agent and drop it."""
        ...

    async def fleet_changed(self, project_pk: int) -> None:
        """A device joined, left or changed labels: let the fleet hooks follow."""
        ...

    # -- hearing from agents ------------------------------------------------------------

    def on(self, message_type: type[M], handler: MessageHandler[M]) -> None: ...

    def on_connect(self, hook: SessionHook) -> None: ...

    def on_disconnect(self, hook: SessionHook) -> None: ...

    def on_stream(self, kind: str, acceptor: StreamAcceptor) -> None: ...

    def on_frames(self, handler: FrameHandler) -> None: ...

    def on_fleet_change(self, hook: FleetHook) -> None: ...

    def desired_from(self, source: DesiredSource) -> None: ...
