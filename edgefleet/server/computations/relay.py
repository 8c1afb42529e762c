"""This replica's running computations, and how federated messages reach them.

::

    agent --FedRelay--> hub.on(FedRelay) --> Relay.from_device
        computation runs here:   Orchestrator.deliver(device, payload)
        runs on another replica: bus ef.fed.<computation> -> that replica's Relay
    Orchestrator --> Relay.to_device --> hub.deliver(device, FedRelay)   (any replica)

Each message is forwarded as the agent sent it (parsed and re-encoded by the
strict wire models); the server holds no key that opens a share or a masked
input. A device disconnecting mid-round is dropped at once, not at the timeout.

Binary on the wire (protocol 3, negotiated in hello/welcome): a masked input,
share bundle or share inbox travels as one typed binary frame
(:func:`edgefleet.fed.codec.encode_frame`: a JSON header naming the message type
and computation, then the raw bytes), not base64 inside JSON. A frame is parsed
strictly (magic, type code, lengths, the header's pydantic model, body size;
never unpickled or evaluated) and bounded by ``max_websocket_message_bytes``;
a malformed one is dropped and counted (:attr:`Relay.refused_frames`), the
session and everyone else's computations go on. Agents that speak protocol 1-2
(mixed fleets) get and send JSON as before.

Tests record what the server relays by wrapping this class's methods from
outside (tests/support/fedhooks.py); nothing here writes a transcript.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from edgefleet.fed import codec
from edgefleet.fed.messages import FedMessage, Invitation
from edgefleet.server.agent_session import AgentSession
from edgefleet.server.bus.base import BusMessage, Subscription
from edgefleet.server.bus.envelopes import EnvelopeError, FedForward, read_fed
from edgefleet.server.computations import datasets, service
from edgefleet.server.computations.plan import Plan
from edgefleet.server.computations.schemas import ComputationIn
from edgefleet.server.context import ServerContext
from edgefleet.server.projects.tables import Project
from edgefleet.wire import fed_relay
from edgefleet.wire.fed_relay import FedRelay
from edgefleet.wire.link import TransportClosed
from edgefleet.wire.messages import FED_BINARY_PROTOCOL, DatasetsReport, Hello

if TYPE_CHECKING:
    # The aggregator brings numpy and libsodium (~11 MB resident): loaded by the
    # first computation launched here (``launch``), not by every server's start.
    from edgefleet.server.computations.orchestrator import Orchestrator

log = logging.getLogger(__name__)

SWEEP_EVERY = 60.0


def subject(computation_id: str) -> str:
    return f"ef.fed.{computation_id}"


class Relay:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.running: dict[str, Orchestrator] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._subs: dict[str, Subscription] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.refused_frames = 0  # malformed or oversized binary frames dropped
        self.frame_limit = ctx.settings.max_websocket_message_bytes
        self.unmask_threads = ctx.settings.fed_unmask_threads

    async def start(self) -> None:
        hub = self.ctx.hub
        hub.on(fed_relay.load(), self.from_device)  # fed frames decode from now on
        hub.on_frames(self.from_frame)
        hub.on(DatasetsReport, self._datasets)
        hub.on_disconnect(self._disconnected)
        self._sweeper = asyncio.create_task(self._sweep(), name="computations-sweep")

    async def stop(self) -> None:
        tasks = [t for t in [self._sweeper, *self._tasks.values()] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except (SQLAlchemyError, OSError):  # recording "the server stopped" failed
                log.exception("stopping %s", task.get_name())

    # -- launching --------------------------------------------------------------------------

    def launch(
        self, computation_id: str, plan: Plan, project: Project, body: ComputationIn, actor: str
    ) -> None:
        from edgefleet.server.computations.orchestrator import Orchestrator

        task = plan.task  # built and checked by plan.check (analytics: columns, where, ...)
        invitation = Invitation(
            computation_id=computation_id,
            parties=plan.keys,
            threshold=plan.threshold,
            params=plan.params,
            task=task,
        )
        orchestrator = Orchestrator(
            invitation, body.op, body.bins, plan.names, body.round_timeout, self.to_device
        )
        orchestrator.aggregator.threads = self.unmask_threads
        for device in plan.offline:
            orchestrator.gone[device] = ("advertise", "offline")
        self.running[computation_id] = orchestrator
        self._tasks[computation_id] = asyncio.create_task(
            self._run(orchestrator, project.pk, actor), name=f"computation-{computation_id}"
        )

    async def _failed(self, orchestrator: Orchestrator, error: str) -> None:
        """Record a computation that ended without a result (no participants named)."""
        await service.finish(
            self.ctx,
            orchestrator.computation_id,
            state="failed",
            result=None,
            participants=[],
            parties=orchestrator.parties(),
            error=error,
        )

    async def _run(self, orchestrator: Orchestrator, project_pk: int, actor: str) -> None:
        cid = orchestrator.computation_id
        try:
            if self.ctx.hub.remote_bus:
                self._subs[cid] = await self.ctx.bus.subscribe(subject(cid), self._from_bus)
            outcome = await orchestrator.run()
        except asyncio.CancelledError:
            await self._failed(
                orchestrator, "the server stopped during the computation; nothing was released"
            )
            raise
        except Exception:  # any bug ends this computation as failed, never the others
            log.exception("computation %s failed", cid)
            outcome = None
        finally:
            self.running.pop(cid, None)
            self._tasks.pop(cid, None)
            sub = self._subs.pop(cid, None)
            if sub is not None:
                await sub.unsubscribe()
        if outcome is None:
            await self._failed(orchestrator, "internal error; nothing was released")
            return
        recorded = await service.finish(
            self.ctx,
            cid,
            state=outcome.state,
            result=outcome.result,
            participants=outcome.participants,
            parties=outcome.parties,
            error=outcome.error,
        )
        if not recorded:
            return
        if outcome.state == "done":
            log.info("computation %s done over %d devices", cid, len(outcome.participants))
            count = len(outcome.participants)
            message = f"computation {cid} released its {orchestrator.op} over {count} devices"
        else:
            log.info("computation %s failed: %s", cid, outcome.error)
            message = f"computation {cid} failed: {outcome.error}"
        self.ctx.events.record(
            f"computation.{outcome.state}",
            project_pk,
            message,
            actor=actor,
            data={
                "computation": cid,
                "participants": outcome.participants,
                "released": outcome.result,
                "error": outcome.error,
            },
        )

    # -- messages ----------------------------------------------------------------------------

    async def to_device(self, device_id: str, payload: FedMessage) -> bool:
        message = FedRelay.model_construct(payload=payload)  # the aggregator built it
        session = self.ctx.hub.sessions.get(device_id)
        if (
            session is not None
            and session.protocol >= FED_BINARY_PROTOCOL
            and codec.has_body(payload)
        ):
            try:
                await session.link.send_frame(codec.encode_frame(payload))
            except TransportClosed:
                return False
            return True
        return await self.ctx.hub.deliver(device_id, message)

    async def from_device(self, session: AgentSession, message: FedRelay) -> None:
        await self._route(session.device.id, message.payload)

    async def from_frame(self, session: AgentSession, data: bytes) -> None:
        """A typed binary frame from an agent (protocol 3+): parsed strictly, then
        handled exactly as the same message in JSON would be."""
        try:
            payload = codec.decode_frame(data, limit=self.frame_limit)
        except codec.FrameError as exc:
            self.refused_frames += 1
            log.warning("device %s: dropped a binary frame: %s", session.device.id, exc)
            return
        await self._route(session.device.id, payload)

    async def _route(self, device_id: str, payload: FedMessage | None, cid: str = "") -> None:
        cid = payload.computation_id if payload is not None else cid
        orchestrator = self.running.get(cid)
        if orchestrator is not None:
            orchestrator.deliver(device_id, payload)
        elif self.ctx.hub.remote_bus and payload is not None:
            forward = FedForward(device=device_id, payload=payload)
            await self.ctx.bus.publish(subject(cid), forward.encode())

    async def _from_bus(self, message: BusMessage) -> None:
        try:
            forward = read_fed(message.data)
        except EnvelopeError as exc:
            log.warning("dropped a federated message from the bus: %s", exc)
            return
        orchestrator = self.running.get(forward.payload.computation_id)
        if orchestrator is not None:
            orchestrator.deliver(forward.device, forward.payload)

    async def _disconnected(self, session: AgentSession, _hello: Hello | None) -> None:
        for cid, orchestrator in list(self.running.items()):
            if session.device.id in orchestrator.invitation.parties:
                await self._route(session.device.id, None, cid)

    async def _datasets(self, session: AgentSession, report: DatasetsReport) -> None:
        await datasets.ingest(self.ctx, session, report)

    async def _sweep(self) -> None:
        # One process: nothing that was running before this start can still run.
        everything = not self.ctx.hub.remote_bus
        while True:
            try:
                await service.sweep(self.ctx, set(self.running), everything=everything)
                everything = False
            except Exception:  # the loop outlives one bad sweep; the next one retries
                log.exception("sweeping computations failed")
            await asyncio.sleep(SWEEP_EVERY)
