"""The hub: this replica's agent sessions, presence, and reaching any device.

Any code that wants to talk to a device calls the hub (``deliver``,
``command``, ``open_stream``, ``kick``). If this replica holds the device's
connection the hub uses it directly; otherwise it goes through the bus to the
replica that does (subject ``ef.device.<id>``, subscribed by the holder:
:mod:`.inbox`).
With the in-process bus there is no other replica, so a device that is not
held here is offline, and no per-device subscriptions are made at all.

Presence is written in batches (:mod:`.presence`): every ``flush_interval``
the devices that heartbeated since the last flush are extended together; a
silent one simply expires, a clean disconnect clears its row at once.

Other modules plug in without the gateway knowing them, through the
:class:`~edgefleet.server.devices_link.DeviceLink` Protocol the hub satisfies:
``on(MessageType, handler)`` for agent messages, ``on_connect`` /
``on_disconnect`` for session life, ``on_stream`` / ``on_frames`` for what
agents open or send in binary, ``on_fleet_change``, and ``desired_from`` for
what to push when an agent connects. Only the server's assembly knows ``Hub``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.heap import SWEEP_EVERY, Tenure, sweep_young
from edgefleet.server.agent_session import AgentSession
from edgefleet.server.bus.base import BusError, BusTimeout, NoResponders
from edgefleet.server.bus.envelopes import (
    CommandFailed,
    Deliver,
    EnvelopeError,
    Kick,
    RunCommand,
    Superseded,
    read_command_reply,
)
from edgefleet.server.context import ServerContext
from edgefleet.server.devices.tables import Device
from edgefleet.server.devices_link import (
    DesiredSource,
    FleetHook,
    FrameHandler,
    LinkCounts,
    M,
    MessageHandler,
    SessionHook,
    StreamAcceptor,
)
from edgefleet.server.errors import GatewayTimeout, Unavailable
from edgefleet.server.gateway import presence
from edgefleet.server.gateway.admission import Admission, watch_lag
from edgefleet.server.gateway.arrivals import Arrivals
from edgefleet.server.gateway.bridge import StreamBridge, device_subject
from edgefleet.server.gateway.credentials import Credentials
from edgefleet.server.gateway.enrollments import Enrollments
from edgefleet.server.gateway.inbox import ReplicaInbox
from edgefleet.server.gateway.pacer import FramePacer
from edgefleet.tasks import cancel_all, every
from edgefleet.wire.commands import CommandArgs, CommandSpec
from edgefleet.wire.link import TransportClosed
from edgefleet.wire.messages import (
    CommandResult,
    DesiredState,
    Hello,
    Message,
    Revoked,
)
from edgefleet.wire.mux import Stream, StreamError, StreamRefused

log = logging.getLogger(__name__)
A = TypeVar("A", bound=CommandArgs)

AnyHandler = Callable[[AgentSession, Any], Awaitable[None]]


async def _no_jobs(db: AsyncSession, device_pk: int) -> DesiredState:
    generation = await db.scalar(select(Device.desired_generation).where(Device.pk == device_pk))
    return DesiredState(generation=generation or 0, jobs=[])


async def _run_hooks(
    hooks: list[SessionHook], session: AgentSession, hello: Hello | None, what: str
) -> None:
    for hook in hooks:
        try:
            await hook(session, hello)
        except Exception:  # hooks are other modules': one's bug must not stop the rest
            log.exception("%s hook failed for %s", what, session.device.id)


PACE_EVERY = 1.0
"""Seconds between looks at the old generation (a list of it: about 1 ms per
100,000 objects). Often enough that a connecting fleet's sessions are frozen
about a thousand at a time, in pauses of 0.1-0.3 s (RESULTS.md, 2026-12-03)."""


class Hub:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.sessions: dict[str, AgentSession] = {}
        self.handlers: dict[type[Message], AnyHandler] = {}
        self.connect_hooks: list[SessionHook] = []
        self.disconnect_hooks: list[SessionHook] = []
        self.desired_state: DesiredSource = _no_jobs
        self.fleet_hooks: list[FleetHook] = []
        self.stream_bridge: StreamBridge | None = None  # when the bus is remote (scale-out)
        self.stream_acceptors: dict[str, StreamAcceptor] = {}  # agent-opened, by header kind
        # typed binary frames (federated messages, protocol 3+): the computations relay's
        self.frame_handler: FrameHandler | None = None
        self.inbox = ReplicaInbox(self)  # what other replicas ask of devices held here
        self._tasks: list[asyncio.Task[None]] = []
        # the sessions of a settled fleet, kept out of full collections (edgefleet.heap)
        self.tenure = Tenure(lambda: len(self.sessions), paced=True)  # by _pace
        settings = ctx.settings
        self.ttl = settings.offline_after
        self.flush_interval = min(5.0, max(0.5, settings.heartbeat_interval / 2))
        self.admission = Admission(settings.agent_connects_per_second)
        self.enrollments = Enrollments(ctx)
        self.arrivals = Arrivals(ctx, self.ttl)
        self.credentials = Credentials(ctx)
        self.pacer = FramePacer()  # agent frames per loop turn: API requests keep their place

    @property
    def remote_bus(self) -> bool:
        return self.ctx.settings.bus != "memory"

    def counts(self) -> LinkCounts:
        return LinkCounts(
            agents=len(self.sessions),
            frames=self.pacer.frames,
            frames_deferred=self.pacer.deferred,
            collections_paced=self.tenure.paced,
            thaws=self.tenure.thaws,
            connections_admitted=self.admission.admitted,
            connections_refused=self.admission.refused,
        )

    # -- plugging in (DeviceLink) -----------------------------------------------------

    def on(self, message_type: type[M], handler: MessageHandler[M]) -> None:
        self.handlers[message_type] = handler

    def on_connect(self, hook: SessionHook) -> None:
        self.connect_hooks.append(hook)

    def on_disconnect(self, hook: SessionHook) -> None:
        self.disconnect_hooks.append(hook)

    def on_stream(self, kind: str, acceptor: StreamAcceptor) -> None:
        self.stream_acceptors[kind] = acceptor

    def on_frames(self, handler: FrameHandler) -> None:
        self.frame_handler = handler

    def on_fleet_change(self, hook: FleetHook) -> None:
        self.fleet_hooks.append(hook)

    def desired_from(self, source: DesiredSource) -> None:
        self.desired_state = source

    async def fleet_changed(self, project_pk: int) -> None:
        """A device joined, left or changed labels: let selector jobs follow."""
        for hook in self.fleet_hooks:
            try:
                await hook(project_pk)
            except Exception:  # hooks are other modules': one's bug must not stop the rest
                log.exception("fleet hook failed for project pk %d", project_pk)

    # -- life -----------------------------------------------------------------------

    async def start(self) -> None:
        self.tenure.install()
        if self.remote_bus:
            self.stream_bridge = StreamBridge(self.ctx.bus)
        flush = every(self.flush_interval, self.flush_presence, log, "presence flush")
        pace = every(PACE_EVERY, self._pace, log, "paced collection")
        sweep = every(SWEEP_EVERY, self._sweep, log, "young collection")
        self._tasks = [
            asyncio.create_task(flush, name="presence-flush"),
            asyncio.create_task(pace, name="paced-collection"),
            asyncio.create_task(sweep, name="young-collection"),
            asyncio.create_task(self._reap_loop(), name="session-reaper"),
            asyncio.create_task(watch_lag(self.admission), name="admission-lag"),
        ]

    async def stop(self) -> None:
        self.tenure.uninstall()
        await cancel_all(self._tasks)
        for session in list(self.sessions.values()):
            await session.link.close(1012, "server shutting down")
        await self.inbox.close_all()

    # -- sessions ---------------------------------------------------------------------

    async def attach(
        self,
        session: AgentSession,
        hello: Hello,
        device_changes: dict[str, object] | None = None,
    ) -> int:
        """Make ``session`` the device's connection on this replica and mark it
        online. Returns the device's desired generation, read once the session
        was reachable here: a change committed from then on is pushed to it."""
        previous = self.sessions.get(session.device.id)
        self.sessions[session.device.id] = session
        if previous is not None and previous is not session:
            await previous.link.close(4000, "replaced by a newer connection")
        if self.remote_bus:  # reachable from other replicas before the generation is read
            await self.inbox.open(session)
        # Written with the other arrivals of the moment (one commit for a storm).
        arrived = await self.arrivals.arrive(session.device.pk, dict(device_changes or {}))
        if self.remote_bus:
            superseded = Superseded(replica=self.ctx.replica, session=session.id)
            await self.ctx.bus.publish(device_subject(session.device.id), superseded.encode())
        if not arrived.was_online:
            self.ctx.events.record(
                "device.connected",
                session.device.project_pk,
                f"device {session.device.name} connected",
                device_id=session.device.id,
                data={"replica": self.ctx.replica},
            )
        await _run_hooks(self.connect_hooks, session, hello, "connect")
        return arrived.desired_generation

    async def detach(self, session: AgentSession, reason: str) -> None:
        if self.sessions.get(session.device.id) is not session:
            return  # replaced by a newer connection, which owns presence now
        del self.sessions[session.device.id]
        self.tenure.departed()
        session.fail_pending(f"device disconnected: {reason}")
        await self.inbox.close(session.device.id)
        try:
            await presence.clear(self.ctx.sessions, self.ctx.replica, session.device.pk)
        except SQLAlchemyError:  # its presence expires on its own (offline_after)
            log.exception("could not clear presence of %s", session.device.id)
        self.ctx.events.record(
            "device.disconnected",
            session.device.project_pk,
            f"device {session.device.name} disconnected ({reason})",
            device_id=session.device.id,
        )
        await _run_hooks(self.disconnect_hooks, session, None, "disconnect")

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
            self.pacer.sent += 1  # a burst of these (a fan-out): replies are coming
            try:
                await session.send(message)
            except TransportClosed:  # it is going away; the reconnect re-sends state
                log.info("device %s closed before a %s", device_id, type(message).__name__)
                return False
            return True
        if not self.remote_bus:
            return False
        await self.ctx.bus.publish(device_subject(device_id), Deliver(message=message).encode())
        return True

    async def command(
        self, device_id: str, spec: CommandSpec[A, Any], args: A, timeout: float = 30.0
    ) -> CommandResult:
        session = self.sessions.get(device_id)
        if session is not None:
            try:
                return await session.command(spec.name, args, timeout)
            except TimeoutError:
                raise GatewayTimeout(
                    f"device {device_id} did not answer within {timeout:g} s"
                ) from None
            except ConnectionError as exc:
                raise Unavailable(str(exc)) from None
        if not self.remote_bus:
            raise Unavailable(f"device {device_id} is offline")
        envelope = RunCommand(name=spec.name, args=args, timeout=timeout)
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
        try:
            answer = read_command_reply(reply)
        except EnvelopeError as exc:
            raise Unavailable(f"the device's replica answered the command with {exc}") from exc
        if isinstance(answer, CommandFailed):
            raise Unavailable(answer.error or "the device's replica could not run the command")
        return answer.result

    async def open_stream(
        self,
        device_id: str,
        header: dict[str, Any],
        timeout: float = 15.0,
        *,
        first: Callable[[Stream], Awaitable[None]] | None = None,
    ) -> Stream:
        """Open a stream to the device and wait until it accepts; raises
        Unavailable (offline, refused) or GatewayTimeout. ``first`` sends what
        need not wait for the answer (DeviceLink.open_stream)."""
        session = self.sessions.get(device_id)
        if session is not None:
            stream = await session.link.mux.open(header)
        elif self.remote_bus and self.stream_bridge is not None:
            stream = await self.stream_bridge.open(device_id, header)
        else:
            raise Unavailable(f"device {device_id} is offline")
        if first is not None:
            with contextlib.suppress(StreamError):  # the answer awaited below says why
                await first(stream)
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
            try:
                await session.send(Revoked(reason=reason))
            except TransportClosed:  # gone already: closing below is all that is left
                log.info("device %s left before hearing it was revoked", device_id)
            await session.link.close(4401, reason[:120])
            return
        if self.remote_bus:
            try:
                await self.ctx.bus.publish(device_subject(device_id), Kick(reason=reason).encode())
            except BusError as exc:  # its credential is gone: it cannot reconnect anyway
                log.warning("could not tell the replica holding %s to drop it: %s", device_id, exc)

    # -- presence ---------------------------------------------------------------------

    async def flush_presence(self) -> None:
        seen = [s for s in self.sessions.values() if s.seen_since_flush]
        if not seen:
            return
        for s in seen:
            s.seen_since_flush = False
        pks = [s.device.pk for s in seen]
        await presence.extend(self.ctx.sessions, self.ctx.replica, pks, self.ttl)

    async def _pace(self) -> None:
        # full collections small and often, not large and rare, and not on top
        # of a fan-out landing unless they must (edgefleet.heap.Tenure.pace)
        self.tenure.pace(calm=self.pacer.calm())

    async def _sweep(self) -> None:
        # a large fleet's sessions replace young objects for old ones, which
        # CPython's count does not see (edgefleet.heap.sweep_young)
        if len(self.sessions) >= self.tenure.least:
            sweep_young()

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
