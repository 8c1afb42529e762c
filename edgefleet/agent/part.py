"""What a part of the agent is, and what it is built from.

A part (the data endpoint, telemetry, the local API, federated computations,
…) is built once from an :class:`AgentContext`, after the device's identity,
runtimes, Jobs and connection exist, so nothing it is given is ``None``. It
then takes part in the agent's life through the phases it implements, in the
style of Nomad's alloc-runner hooks: each phase is a small Protocol, and the
agent asks every part which ones it has instead of each part appending itself
to the agent's lists. No part imports the agent (an import-linter contract
holds this): the context is all a part knows of it.

The parts themselves, in start order and with the condition under which each
runs, are listed in :mod:`edgefleet.agent.parts`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from edgefleet.agent.connection import Connection
from edgefleet.agent.jobs import Jobs
from edgefleet.agent.runtimes.base import RuntimeSet
from edgefleet.agent.settings import AgentSettings
from edgefleet.agent.state import Identity, StateDir
from edgefleet.wire.commands import CommandReply
from edgefleet.wire.messages import DeviceFacts, Message
from edgefleet.wire.mux import Stream

if TYPE_CHECKING:  # ssl loads only for an https server (agent/footprint.py)
    import ssl

MessageHandler = Callable[[Any], Awaitable[None]]
StreamHandler = Callable[[Stream], Awaitable[None]]
CommandHandler = Callable[[Any], Awaitable[CommandReply]]
"""Takes its command's args model, returns its reply model (:mod:`edgefleet.wire.commands`)."""


@dataclass(frozen=True)
class AgentContext:
    """The narrow view of the running agent a part is built from.

    ``spawn`` runs a coroutine the agent cancels when it stops; ``facts`` are
    the device's facts afresh (with every part's facts hook applied);
    ``request_restart`` stops the agent cleanly and, given a handover, runs it
    after the stop instead of a plain restart (an over-the-air upgrade)."""

    settings: AgentSettings
    state: StateDir
    identity: Identity
    runtimes: RuntimeSet
    jobs: Jobs
    connection: Connection
    ssl_context: ssl.SSLContext | None
    spawn: Callable[[Coroutine[Any, Any, Any], str], asyncio.Task[Any]]
    facts: Callable[[], DeviceFacts]
    request_restart: Callable[[Callable[[], None] | None], None]

    @property
    def device_id(self) -> str:
        return self.identity.device_id


@runtime_checkable
class Starts(Protocol):
    """Started after Jobs, in the parts table's order."""

    async def start(self) -> None: ...


@runtime_checkable
class Stops(Protocol):
    """Stopped in reverse order, before Jobs stop."""

    async def stop(self) -> None: ...


@runtime_checkable
class OnConnected(Protocol):
    """Run (as its own task) after each welcome from the server."""

    async def on_connected(self) -> None: ...


@runtime_checkable
class HandlesMessages(Protocol):
    """Server messages this part answers, by message type."""

    def message_handlers(self) -> Mapping[type[Message], MessageHandler]: ...


@runtime_checkable
class HandlesStreams(Protocol):
    """Streams the server opens that this part serves, by the header's ``kind``."""

    def stream_handlers(self) -> Mapping[str, StreamHandler]: ...


@runtime_checkable
class HandlesCommands(Protocol):
    """One-shot commands this part adds to :mod:`edgefleet.agent.commands`, by name."""

    def command_handlers(self) -> Mapping[str, CommandHandler]: ...


@runtime_checkable
class AddsFacts(Protocol):
    """Changes the device's facts before they are sent (e.g. the owner's local apps)."""

    def facts_hook(self, facts: DeviceFacts) -> DeviceFacts: ...


Part = Starts | Stops | OnConnected | HandlesMessages | HandlesStreams | HandlesCommands | AddsFacts
