"""What other replicas ask of the devices this replica holds.

With a remote bus (scale-out), every device held here gets one subscription
on ``ef.device.<id>``: another replica's API publishes there to reach it,
and only the holder answers. The hub opens it when a session attaches and
closes it when the session leaves; this module turns what arrives into the
hub's own calls (``deliver``, ``kick``, a command whose result is published
back, a stream bridged across), or closes a session that a newer connection
on another replica superseded. With the in-process bus nothing here runs:
no other replica exists to ask.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, Protocol

from edgefleet.server.agent_session import AgentSession
from edgefleet.server.bus.base import BusError, BusMessage, Subscription
from edgefleet.server.bus.envelopes import (
    CommandAnswered,
    CommandFailed,
    Deliver,
    EnvelopeError,
    Kick,
    OpenStream,
    RunCommand,
    Superseded,
    read_device,
)
from edgefleet.server.context import ServerContext
from edgefleet.server.gateway.bridge import StreamBridge, device_subject
from edgefleet.wire.messages import Message

log = logging.getLogger(__name__)


class Holder(Protocol):
    """The hub, as far as this module uses it."""

    ctx: ServerContext
    sessions: dict[str, AgentSession]
    stream_bridge: StreamBridge | None

    async def deliver(self, device_id: str, message: Message) -> bool: ...

    async def kick(self, device_id: str, reason: str) -> None: ...


class ReplicaInbox:
    """The bus subscriptions of the devices ``hub`` holds, one per device."""

    def __init__(self, hub: Holder) -> None:
        self.hub = hub
        self._subs: dict[str, Subscription] = {}
        self._background: set[asyncio.Task[Any]] = set()  # commands and bridges under way

    async def open(self, session: AgentSession) -> None:
        """Listen for ``session``'s device (a previous session's subscription
        is closed first: what arrives is for the newest one)."""
        device_id = session.device.id
        await self.close(device_id)

        async def handle(message: BusMessage) -> None:
            await self._on_bus(session, message)

        self._subs[device_id] = await self.hub.ctx.bus.subscribe(device_subject(device_id), handle)

    async def close(self, device_id: str) -> None:
        sub = self._subs.pop(device_id, None)
        if sub is None:
            return
        try:
            await sub.unsubscribe()
        except BusError as exc:  # the bus connection is gone, and its subscriptions with it
            log.warning("unsubscribing from device %s: %s", device_id, exc)

    async def close_all(self) -> None:
        for device_id in list(self._subs):
            await self.close(device_id)

    async def _on_bus(self, session: AgentSession, message: BusMessage) -> None:
        hub = self.hub
        if hub.sessions.get(session.device.id) is not session:
            return
        try:
            envelope = read_device(message.data)
        except EnvelopeError as exc:
            log.warning("dropped a message for device %s: %s", session.device.id, exc)
            return
        if isinstance(envelope, Deliver):
            await hub.deliver(session.device.id, envelope.message)
        elif isinstance(envelope, RunCommand) and message.reply:
            self._spawn(self._answer_command(session, envelope, message.reply))
        elif isinstance(envelope, Kick):
            await hub.kick(session.device.id, envelope.reason)
        elif isinstance(envelope, Superseded) and envelope.session != session.id:
            await session.link.close(4000, "the device connected to another replica")
        elif isinstance(envelope, OpenStream) and hub.stream_bridge is not None:
            self._spawn(hub.stream_bridge.accept(session, envelope, message.reply))

    async def _answer_command(
        self, session: AgentSession, envelope: RunCommand, reply_to: str
    ) -> None:
        answer: CommandAnswered | CommandFailed
        try:
            result = await session.command(envelope.name, envelope.args, envelope.timeout)
            answer = CommandAnswered(result=result)
        except TimeoutError:
            answer = CommandFailed(error="device did not answer in time")
        except ConnectionError as exc:
            answer = CommandFailed(error=str(exc))
        await self.hub.ctx.bus.publish(reply_to, answer.encode())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
