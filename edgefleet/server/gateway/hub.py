"""The hub: this replica's agent sessions, presence, and reaching any device.

Any code that wants to talk to a device calls the hub (``deliver``,
``command``, ``open_stream``, ``kick``). If this replica holds the device's
connection the hub uses it directly; otherwise it goes through the bus to the
replica that does (subject ``ef.device.<id>``, subscribed by the holder).
With the in-process bus there is no other replica, so a device that is not
held here is offline, and no per-device subscriptions are made at all.

Presence is written in batches: every ``flush_interval`` one UPDATE extends
``presence.expires_at`` for every device that heartbeated since the last
flush. A device whose agent went quiet, or whose replica died, simply stops
being extended and is offline once ``expires_at`` passes; a clean disconnect
deletes its row at once.

Other modules plug in without the gateway knowing them: ``on(MessageType,
handler)`` for agent messages, ``connect_hooks`` / ``disconnect_hooks`` for
session life, and ``desired_state`` for what to push when an agent connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.bus.base import BusError, BusMessage, BusTimeout, NoResponders, Subscription
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import utcnow
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.errors import GatewayTimeout, Unavailable
from edgefleet.server.gateway.admission import Admission
from edgefleet.server.gateway.arrivals import Arrivals
from edgefleet.server.gateway.enrollments import Enrollments
from edgefleet.server.gateway.session import AgentSession
from edgefleet.wire.messages import (
    CommandResult,
    DesiredState,
    Hello,
    Message,
    Revoked,
    decode,
    encode,
)
from edgefleet.wire.mux import Stream, StreamRefused

log = logging.getLogger(__name__)

MessageHandler = Callable[[AgentSession, Any], Awaitable[None]]
SessionHook = Callable[[AgentSession, Hello | None], Awaitable[None]]
DesiredSource = Callable[[AsyncSession, int], Awaitable[DesiredState]]
StreamAcceptor = Callable[[AgentSession, Stream], Awaitable[None]]


def device_subject(device_id: str) -> str:
    return f"ef.device.{device_id}"


async def _no_jobs(db: AsyncSession, device_pk: int) -> DesiredState:
    generation = await db.scalar(select(Device.desired_generation).where(Device.pk == device_pk))
    return DesiredState(generation=generation or 0, jobs=[])


class Hub:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.sessions: dict[str, AgentSession] = {}
        self.handlers: dict[type[Message], MessageHandler] = {}
        self.connect_hooks: list[SessionHook] = []
        self.disconnect_hooks: list[SessionHook] = []
        self.desired_state: DesiredSource = _no_jobs
        self.fleet_hooks: list[Callable[[int], Awaitable[None]]] = []
        self.stream_bridge: Any = None  # set by the scale-out bridge when the bus is remote
        self.stream_acceptors: dict[str, StreamAcceptor] = {}  # agent-opened, by header kind
        # typed binary frames (federated messages, protocol 3+): set by the computations relay
        self.frame_handler: Callable[[AgentSession, bytes], Awaitable[None]] | None = None
        self._subs: dict[str, Subscription] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        settings = ctx.settings
        self.ttl = settings.offline_after
        self.flush_interval = min(5.0, max(0.5, settings.heartbeat_interval / 2))
        self.admission = Admission(settings.agent_connects_per_second)
        self.enrollments = Enrollments(ctx)
        self.arrivals = Arrivals(ctx, self.ttl)

    @property
    def remote_bus(self) -> bool:
        return self.ctx.settings.bus != "memory"

    def on(self, message_type: type[Message], handler: MessageHandler) -> None:
        self.handlers[message_type] = handler

    async def fleet_changed(self, project_pk: int) -> None:
        """A device joined, left or changed labels: let selector jobs follow."""
        for hook in self.fleet_hooks:
            try:
                await hook(project_pk)
            except Exception:
                log.exception("fleet hook failed")

    # -- life -----------------------------------------------------------------------

    async def start(self) -> None:
        if self.remote_bus:
            from edgefleet.server.gateway.bridge import StreamBridge

            self.stream_bridge = StreamBridge(self)
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="presence-flush"),
            asyncio.create_task(self._reap_loop(), name="session-reaper"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for session in list(self.sessions.values()):
            await session.link.close(1012, "server shutting down")
        for sub in list(self._subs.values()):
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    # -- sessions ---------------------------------------------------------------------

    async def attach(
        self,
        session: AgentSession,
        hello: Hello,
        device_changes: dict[str, object] | None = None,
    ) -> None:
        """Make ``session`` the device's connection on this replica and mark it online."""
        previous = self.sessions.get(session.device.id)
        self.sessions[session.device.id] = session
        if previous is not None and previous is not session:
            await previous.link.close(4000, "replaced by a newer connection")
        # Written with the other arrivals of the moment (one commit for a storm).
        was_online = await self.arrivals.arrive(session.device.pk, dict(device_changes or {}))
        if self.remote_bus:
            await self._subscribe(session)
            await self.ctx.bus.publish(
                device_subject(session.device.id),
                json.dumps(
                    {"op": "superseded", "replica": self.ctx.replica, "session": session.id}
                ).encode(),
            )
        if not was_online:
            self.ctx.events.record(
                "device.connected",
                session.device.project_pk,
                f"device {session.device.name} connected",
                device_id=session.device.id,
                data={"replica": self.ctx.replica},
            )
        for hook in self.connect_hooks:
            try:
                await hook(session, hello)
            except Exception:
                log.exception("connect hook failed for %s", session.device.id)

    async def detach(self, session: AgentSession, reason: str) -> None:
        if self.sessions.get(session.device.id) is not session:
            return  # replaced by a newer connection, which owns presence now
        del self.sessions[session.device.id]
        session.fail_pending(f"device disconnected: {reason}")
        sub = self._subs.pop(session.device.id, None)
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        try:
            async with self.ctx.session() as db:
                await db.execute(
                    delete(Presence).where(
                        Presence.device_pk == session.device.pk,
                        Presence.replica == self.ctx.replica,
                    )
                )
                await db.execute(
                    update(Device).where(Device.pk == session.device.pk).values(last_seen=utcnow())
                )
                await db.commit()
        except Exception:
            log.exception("could not clear presence of %s", session.device.id)
        self.ctx.events.record(
            "device.disconnected",
            session.device.project_pk,
            f"device {session.device.name} disconnected ({reason})",
            device_id=session.device.id,
        )
        for hook in self.disconnect_hooks:
            with contextlib.suppress(Exception):
                await hook(session, None)

    async def dispatch(self, session: AgentSession, message: Message) -> None:
        handler = self.handlers.get(type(message))
        if handler is None:
            log.debug("no handler for %s from %s", type(message).__name__, session.device.id)
            return
        await handler(session, message)

    async def accept_stream(self, session: AgentSession, stream: Stream) -> None:
        """A stream the agent opened (even id): hand it to the acceptor of its kind."""
        kind = str(stream.header.get("kind", ""))
        acceptor = self.stream_acceptors.get(kind)
        if acceptor is None:
            await stream.refuse(f"this server does not accept {kind!r} streams")
            return
        await acceptor(session, stream)

    # -- reaching devices ---------------------------------------------------------------

    async def deliver(self, device_id: str, message: Message) -> bool:
        """Send a control message to the device wherever it is held. Returns False
        if it is offline (nothing is queued: desired state is re-sent on connect)."""
        session = self.sessions.get(device_id)
        if session is not None:
            with contextlib.suppress(Exception):
                await session.send(message)
                return True
            return False
        if not self.remote_bus:
            return False
        envelope = json.dumps({"op": "deliver", "message": json.loads(encode(message))})
        await self.ctx.bus.publish(device_subject(device_id), envelope.encode())
        return True

    async def command(
        self, device_id: str, name: str, args: dict[str, Any], timeout: float = 30.0
    ) -> CommandResult:
        session = self.sessions.get(device_id)
        if session is not None:
            try:
                return await session.command(name, args, timeout)
            except TimeoutError:
                raise GatewayTimeout(
                    f"device {device_id} did not answer within {timeout:g} s"
                ) from None
            except ConnectionError as exc:
                raise Unavailable(str(exc)) from None
        if not self.remote_bus:
            raise Unavailable(f"device {device_id} is offline")
        envelope = json.dumps({"op": "command", "name": name, "args": args, "timeout": timeout})
        try:
            reply = await self.ctx.bus.request(
                device_subject(device_id), envelope.encode(), timeout + 2
            )
        except NoResponders:
            raise Unavailable(f"device {device_id} is offline") from None
        except BusTimeout:
            raise GatewayTimeout(
                f"device {device_id} did not answer within {timeout:g} s"
            ) from None
        body = json.loads(reply)
        if "result" not in body:
            raise Unavailable(
                str(body.get("error") or "the device's replica could not run the command")
            )
        return CommandResult.model_validate(body["result"])

    async def open_stream(
        self, device_id: str, header: dict[str, Any], timeout: float = 15.0
    ) -> Stream:
        """Open a stream to the device and wait until it accepts; raises
        Unavailable (offline, refused) or GatewayTimeout."""
        session = self.sessions.get(device_id)
        if session is not None:
            stream = await session.link.mux.open(header)
        elif self.remote_bus and self.stream_bridge is not None:
            stream = await self.stream_bridge.open(device_id, header)
        else:
            raise Unavailable(f"device {device_id} is offline")
        try:
            await stream.wait_accepted(timeout)
        except StreamRefused as exc:
            if "timed out" in exc.reason:
                raise GatewayTimeout(f"device {device_id}: {exc.reason}") from None
            raise Unavailable(exc.reason) from None
        return stream

    async def kick(self, device_id: str, reason: str) -> None:
        """The device's credential is gone: tell the agent and drop it."""
        session = self.sessions.get(device_id)
        if session is not None:
            with contextlib.suppress(Exception):
                await session.send(Revoked(reason=reason))
            await session.link.close(4401, reason[:120])
            return
        if self.remote_bus:
            with contextlib.suppress(BusError):
                envelope = json.dumps({"op": "kick", "reason": reason}).encode()
                await self.ctx.bus.publish(device_subject(device_id), envelope)

    # -- cross-replica ----------------------------------------------------------------

    async def _subscribe(self, session: AgentSession) -> None:
        device_id = session.device.id
        old = self._subs.pop(device_id, None)
        if old is not None:
            with contextlib.suppress(Exception):
                await old.unsubscribe()

        async def handle(message: BusMessage) -> None:
            await self._on_bus(session, message)

        self._subs[device_id] = await self.ctx.bus.subscribe(device_subject(device_id), handle)

    async def _on_bus(self, session: AgentSession, message: BusMessage) -> None:
        if self.sessions.get(session.device.id) is not session:
            return
        body = json.loads(message.data)
        op = body.get("op")
        if op == "deliver":
            with contextlib.suppress(Exception):
                await session.send(decode(json.dumps(body["message"])))
        elif op == "command" and message.reply:
            self._spawn(self._answer_command(session, body, message.reply))
        elif op == "kick":
            await self.kick(session.device.id, body.get("reason", "revoked"))
        elif op == "superseded" and body.get("session") != session.id:
            await session.link.close(4000, "the device connected to another replica")
        elif op == "open_stream" and self.stream_bridge is not None:
            self._spawn(self.stream_bridge.accept(session, body, message.reply))

    async def _answer_command(
        self, session: AgentSession, body: dict[str, Any], reply_to: str
    ) -> None:
        try:
            result = await session.command(body["name"], body.get("args", {}), body["timeout"])
            reply = json.dumps({"result": result.model_dump(mode="json")}).encode()
        except TimeoutError:
            reply = json.dumps({"error": "device did not answer in time"}).encode()
        except ConnectionError as exc:
            reply = json.dumps({"error": str(exc)}).encode()
        await self.ctx.bus.publish(reply_to, reply)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- presence ---------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush_presence()
            except Exception:
                log.exception("presence flush failed")

    async def flush_presence(self) -> None:
        seen = [s for s in self.sessions.values() if s.seen_since_flush]
        if not seen:
            return
        for s in seen:
            s.seen_since_flush = False
        now = utcnow()
        expires = now + timedelta(seconds=self.ttl)
        pks = [s.device.pk for s in seen]
        async with self.ctx.session() as db:
            for start in range(0, len(pks), 500):
                chunk = pks[start : start + 500]
                await db.execute(
                    update(Presence)
                    .where(Presence.device_pk.in_(chunk), Presence.replica == self.ctx.replica)
                    .values(expires_at=expires)
                )
                await db.execute(update(Device).where(Device.pk.in_(chunk)).values(last_seen=now))
            await db.commit()

    async def _reap_loop(self) -> None:
        """Close sessions whose agent stopped heartbeating (a cut network leaves
        the TCP connection open; only silence tells)."""
        while True:
            await asyncio.sleep(self.flush_interval)
            deadline = time.monotonic() - self.ttl
            for session in list(self.sessions.values()):
                if session.last_heartbeat < deadline:
                    log.info("device %s missed its heartbeats; closing", session.device.id)
                    await session.link.close(4008, "no heartbeat")
                    await self.detach(session, "missed heartbeats")
