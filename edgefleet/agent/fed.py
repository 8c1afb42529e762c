"""The agent's part in federated computations: it holds the owner's datasets,
reports them (schema, rounded size, policy; never a value), and takes part in
secure aggregation as one :class:`~edgefleet.fed.party.Party` per computation.

::

    server                          FederatedPart                     Party (pure)
    fed.invite ------------------>  policy.refusal? --yes--> fed.abort(reason)
                                    read column -> stats.local_vector -> Party(...)
               <-- fed.advertise -----------------------------------  advertise()
    fed.roster / fed.inbox / fed.unmask_request --> party.handle() --> reply
    fed.abort  ------------------>  party.abort(); forget it

Only the masked vector and encrypted shares leave the device; the values, the
local vector and the party's secrets stay in this process and are dropped when
the computation ends. Log lines name computations, datasets and reasons, never
a value.

Tests inject faults (a process dying before or after its masked input) from
outside, by wrapping this part's methods: tests/support/fedhooks.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edgefleet.agent.datasets.catalog import Catalog
from edgefleet.agent.datasets.guard import Guard
from edgefleet.agent.datasets.ledger import LedgerFile
from edgefleet.agent.datasets.policy import refusal
from edgefleet.agent.datasets.sources import DatasetError
from edgefleet.agent.fed_pins import PeerPins
from edgefleet.agent.part import AgentContext, MessageHandler
from edgefleet.fed.errors import ProtocolAborted, ProtocolViolation
from edgefleet.wire.fed_relay import FedRelay
from edgefleet.wire.messages import DatasetsReport, Message

# The protocol's models (edgefleet.fed.messages, its analytics and codec) load
# with the first fed message, not in an idle agent: imported where they are used.
if TYPE_CHECKING:
    from edgefleet.fed.messages import FedMessage, Invitation, Task, UnmaskRequest
    from edgefleet.fed.party import Party

log = logging.getLogger("edgefleet.agent.fed")

POLL_INTERVAL = 2.0  # seconds between looks at the registry and the dataset files
FORGET_AFTER = 3600.0  # a computation the server never finished is dropped after this


@dataclass
class Running:
    party: Party
    task: Task
    started: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class FederatedPart:
    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.catalog = Catalog(ctx.settings.state_dir)
        self.guard = Guard(LedgerFile(ctx.settings.state_dir))  # budgets, differencing, DP
        self.running: dict[str, Running] = {}
        self.pins = PeerPins(ctx.settings.state_dir)
        # ECDH(long-term me, long-term peer) by (peer, its key): the same every time
        self.pair_cache: dict[tuple[str, bytes], bytes] = {}
        self._task: asyncio.Task[None] | None = None

    def message_handlers(self) -> Mapping[type[Message], MessageHandler]:
        return {FedRelay: self.on_relay}

    async def on_connected(self) -> None:
        await self.report()

    # -- life -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.ctx.settings.fed_repin:
            await asyncio.to_thread(self.pins.forget, self.ctx.settings.fed_repin)
        if not self.catalog.idle():
            await asyncio.to_thread(self.catalog.refresh)
        self._task = asyncio.create_task(self._watch(), name="datasets-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for running in self.running.values():
            running.party.abort()
        self.running.clear()

    async def _watch(self) -> None:
        while True:
            # As slow as the agent's supervisor (the simulator slows it for 10,000 agents),
            # and jittered so that agents started together do not tick together.
            interval = max(POLL_INTERVAL, self.ctx.jobs.supervise_every)
            await asyncio.sleep(interval * random.uniform(0.75, 1.25))
            try:
                if not self.catalog.idle() and await asyncio.to_thread(self.catalog.refresh):
                    log.info("datasets changed: %s", ", ".join(self.catalog.specs) or "none")
                    await self.report()
            except Exception:
                log.exception("looking at the datasets failed")
            now = time.monotonic()
            for cid, running in list(self.running.items()):
                if now - running.started > FORGET_AFTER:
                    running.party.abort()
                    del self.running[cid]

    async def report(self) -> None:
        """Tell the server which datasets this device holds (on connect, on change).
        A device that never declared one says nothing: the server has no rows for it."""
        if not self.catalog.idle():
            await self._send(DatasetsReport(datasets=self.catalog.infos))

    # -- the protocol -------------------------------------------------------------------

    async def on_relay(self, message: FedRelay) -> None:
        from edgefleet.fed.messages import Invitation

        payload = message.payload
        if isinstance(payload, Invitation):
            await self._join(payload)
            return
        running = self.running.get(payload.computation_id)
        if running is None:
            log.debug("%s for unknown computation %s", payload.type, payload.computation_id)
            return
        async with running.lock:
            await self._step(running, payload)

    async def _join(self, invitation: Invitation) -> None:
        cid, task, identity = invitation.computation_id, invitation.task, self.ctx.identity
        if cid in self.running:
            return
        welcome = self.ctx.connection.welcome
        own_project = welcome.project if welcome else identity.project
        spec = self.catalog.spec(task.dataset) if task else None
        reason = refusal(spec, invitation, identity.device_id, own_project)
        if reason is None and identity.private_key is None:
            reason = "this device has no long-term key"
        if reason is None and spec is not None and task is not None:
            parties = list(invitation.parties)
            reason = await asyncio.to_thread(self.guard.admit, spec, task, cid, parties)
        if reason is not None or task is None or identity.private_key is None:
            await self._decline(cid, reason or "no task")
            return
        try:
            vector = await asyncio.to_thread(self._vector, task, invitation.threshold)
            from edgefleet.fed.party import Party  # the crypto loads only when a device computes

            party = Party(
                invitation,
                identity.device_id,
                base64.b64decode(identity.private_key),
                vector,
                self.pair_cache,
            )
            peers = {v: invitation.parties[v] for v in party.neighbours}
            pinned = await asyncio.to_thread(self.pins.check, peers)
            if pinned is not None:
                raise ProtocolViolation(pinned)
            advert = party.advertise()
        except (DatasetError, ValueError, ProtocolViolation, ProtocolAborted) as exc:
            await asyncio.to_thread(self.guard.refund, task.dataset, task, cid)
            await self._decline(cid, str(exc))
            return
        self.running[cid] = Running(party, task)
        log.info(
            "computation %s: taking part (%s of %s.%s, %d parties, threshold %d)",
            cid,
            task.op,
            task.dataset,
            task.column,
            len(invitation.parties),
            invitation.threshold,
        )
        await self._send(FedRelay(payload=advert))

    def _vector(self, task: Task, threshold: int) -> list[float]:
        return self.catalog.contribution(task, threshold)

    def _narrow(self, running: Running, request: UnmaskRequest) -> str | None:
        """The privacy guard's last word, on who the released sum will cover."""
        spec = self.catalog.spec(running.task.dataset)
        if spec is None:
            return f"dataset {running.task.dataset!r} was withdrawn"
        cid = running.party.computation_id
        return self.guard.narrow(spec, running.task, cid, request.survivors)

    async def _step(self, running: Running, payload: FedMessage) -> None:
        from edgefleet.fed.messages import Abort, MaskedInput, ShareInbox, UnmaskRequest

        party, cid = running.party, running.party.computation_id
        # before its masked input nothing of this device's data can be released:
        # an end now gives the privacy budget back (guard.refund)
        unsent = party.phase in ("new", "advertised", "shared") and not isinstance(
            payload, ShareInbox
        )
        # the guard writes its ledger durably: off the event loop, where 100 devices'
        # fsyncs would otherwise queue one behind another (the simulator runs them all)
        if isinstance(payload, UnmaskRequest) and (
            reason := await asyncio.to_thread(self._narrow, running, payload)
        ):
            self.running.pop(cid, None)
            party.abort()
            log.warning("computation %s: refusing to unmask: %s", cid, reason)
            await self._send(FedRelay(payload=Abort(computation_id=cid, reason=reason[:1000])))
            return
        try:
            reply = await asyncio.to_thread(party.handle, payload)
        except ProtocolAborted as exc:
            self.running.pop(cid, None)
            if unsent:
                await asyncio.to_thread(self.guard.refund, running.task.dataset, running.task, cid)
            log.warning("computation %s: aborting: %s", cid, exc.reason)
            await self._send(FedRelay(payload=Abort(computation_id=cid, reason=exc.reason)))
            return
        except ProtocolViolation as exc:
            log.warning("computation %s: ignored a %s: %s", cid, payload.type, exc.reason)
            return
        if isinstance(payload, Abort):
            log.info("computation %s: ended by the server: %s", cid, payload.reason)
        if reply is not None:
            await self._relay(reply)
            if isinstance(reply, MaskedInput):
                log.info("computation %s: masked input sent", cid)
        if party.phase in ("done", "aborted"):
            self.running.pop(cid, None)
            if party.phase == "aborted" and unsent:
                await asyncio.to_thread(self.guard.refund, running.task.dataset, running.task, cid)
            if party.phase == "done":
                log.info("computation %s: done (unmask shares sent)", cid)

    async def _decline(self, computation_id: str, reason: str) -> None:
        from edgefleet.fed.messages import Abort

        log.info("computation %s: declined: %s", computation_id, reason)
        abort = Abort(computation_id=computation_id, reason=reason[:1000])
        await self._send(FedRelay(payload=abort))

    async def _relay(self, payload: FedMessage) -> None:
        """A reply of the party: a masked input or share bundle as one typed binary
        frame (its bytes raw, not base64) when the server speaks protocol 3, else JSON."""
        from edgefleet.fed import codec

        connection = self.ctx.connection
        if connection.fed_binary and codec.has_body(payload):
            if not await connection.send_frame(codec.encode_frame(payload)):
                log.debug("not connected; %s not sent", payload.type)
            return
        await self._send(FedRelay(payload=payload))

    async def _send(self, message: Message) -> None:
        if not await self.ctx.connection.send(message):
            log.debug("not connected; %s not sent", message.__class__.__name__)
