"""One connected agent, as this replica sees it.

The gateway makes a session per connection; services receive it as "the agent
that sent this" (:mod:`edgefleet.server.devices_link`). It lives outside the
gateway and imports nothing of the server, so a service can name it without
importing the gateway."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from edgefleet.wire.commands import CommandArgs
from edgefleet.wire.link import Link
from edgefleet.wire.messages import Command, CommandResult, DesiredState, Message


@dataclass(frozen=True, slots=True)
class DeviceRef:
    pk: int
    id: str
    name: str
    project_pk: int


class AgentSession:
    # One per connected device, for as long as it stays connected: slots, no
    # per-instance dict (issue 16: memory per connected device).
    __slots__ = (
        "_pending",
        "applied_generation",
        "connected_at",
        "device",
        "id",
        "last_heartbeat",
        "link",
        "protocol",
        "runtime_healthy",
        "seen_since_flush",
        "sent_generation",
    )

    def __init__(self, device: DeviceRef, link: Link) -> None:
        self.device = device
        self.link = link
        self.id = uuid.uuid4().hex[:12]
        self.connected_at = time.monotonic()
        self.last_heartbeat = time.monotonic()
        self.seen_since_flush = True
        self.applied_generation = 0
        self.runtime_healthy = True
        self.protocol = 1  # the wire protocol both ends speak (set from the hello)
        # the last desired generation sent on this connection (-1: none yet)
        self.sent_generation = -1
        self._pending: dict[str, asyncio.Future[CommandResult]] = {}

    async def send(self, message: Message) -> None:
        await self.link.send(message)
        if isinstance(message, DesiredState):
            self.sent_generation = message.generation

    def touch(self) -> None:
        self.last_heartbeat = time.monotonic()
        self.seen_since_flush = True

    async def command(self, name: str, args: CommandArgs, timeout: float) -> CommandResult:
        request_id = uuid.uuid4().hex
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self.send(Command(request_id=request_id, name=name, args=args))
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(request_id, None)

    def resolve(self, result: CommandResult) -> None:
        future = self._pending.get(result.request_id)
        if future is not None and not future.done():
            future.set_result(result)

    def fail_pending(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError(reason))
