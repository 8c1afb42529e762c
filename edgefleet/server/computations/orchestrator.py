"""One computation on the server: the :class:`~edgefleet.fed.aggregator.Aggregator`
driven through its four rounds over the agent connections.

::

    invite all ---> collect advertise ---> rosters ---> collect shares ---> inboxes
      ---> collect masked ---> survivor list ---> collect consistency tags
      ---> unmask requests (with the tags) ---> collect unmask ---> result
    each "collect" ends when every expected device answered, declined, went
    offline, or when the round's timeout passes; the ones missing are dropped.
    Fewer than t left at any close: the aggregator aborts, nothing is released.

The orchestrator sees only what the aggregator sees: public keys, encrypted
shares, masked vectors, the shares needed to unmask the sum. Messages a device
sends in another party's name, late or out of round, are refused and ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from edgefleet.fed.aggregator import Aggregator
from edgefleet.fed.errors import ProtocolAborted, ProtocolViolation
from edgefleet.fed.messages import Abort, FedMessage, Invitation, Op
from edgefleet.fed.stats import finish, release

log = logging.getLogger(__name__)

Send = Callable[[str, FedMessage], Awaitable[bool]]


@dataclass
class Outcome:
    state: str  # done | failed
    result: dict[str, Any] | None
    participants: list[str]
    parties: dict[str, dict[str, Any]]
    error: str | None


class Orchestrator:
    def __init__(
        self,
        invitation: Invitation,
        op: Op,
        bins: list[float] | None,
        names: dict[str, str],
        round_timeout: float,
        send: Send,
    ) -> None:
        self.invitation = invitation
        self.computation_id = invitation.computation_id
        self.aggregator = Aggregator(invitation)
        self.op, self.bins, self.names = op, bins, names
        self.round_timeout = round_timeout
        self._send = send
        self.inbox: asyncio.Queue[tuple[str, FedMessage | None]] = asyncio.Queue()
        self.gone: dict[str, tuple[str, str]] = {}  # device -> (round, reason)
        self.declined: set[str] = set()

    def deliver(self, device: str, payload: FedMessage | None) -> None:
        """A device's message (None: the device disconnected); handled in order."""
        self.inbox.put_nowait((device, payload))

    async def run(self) -> Outcome:
        agg = self.aggregator
        try:
            await self._broadcast(list(self.invitation.parties), self.invitation)
            await self._collect()
            for device, roster in agg.rosters().items():
                await self._to(device, roster)
            await self._collect()
            for device, inbox in agg.inboxes().items():
                await self._to(device, inbox)
            await self._collect()
            lists = agg.survivor_list()
            await self._broadcast(lists.survivors, lists)
            await self._collect()
            for device, request in agg.unmask_requests().items():
                await self._to(device, request)
            await self._collect()
            summed = await asyncio.to_thread(agg.result_exact)
            task = self.invitation.task
            statistic = release(task, summed) if task else finish(self.op, summed, self.bins)
        except ProtocolAborted as exc:
            reason = f"{exc.reason}{self._said(agg.dropped)}; nothing was released"
            await self._end(reason)
            return Outcome("failed", None, [], self.parties(), reason)
        survivors = agg.survivors
        await self._end("the computation is over", spare=set(survivors) - set(self.gone))
        return Outcome("done", statistic.model_dump(mode="json"), survivors, self.parties(), None)

    # -- rounds -------------------------------------------------------------------------

    async def _broadcast(self, devices: list[str], message: FedMessage) -> None:
        for device in devices:
            await self._to(device, message)

    async def _to(self, device: str, message: FedMessage) -> None:
        if device in self.gone:
            return
        if not await self._send(device, message):
            self.gone[device] = (self.aggregator.phase, "offline")

    async def _collect(self) -> None:
        """Feed the aggregator until the round is answered or its time is up."""
        agg, loop = self.aggregator, asyncio.get_running_loop()
        phase = agg.phase
        deadline = loop.time() + self.round_timeout
        while agg.waiting_for() - set(self.gone):
            try:
                device, payload = await asyncio.wait_for(
                    self.inbox.get(), max(0.0, deadline - loop.time())
                )
            except TimeoutError:
                break
            self._take(device, payload)
        for device in agg.waiting_for() - set(self.gone):
            self.gone[device] = (phase, f"did not answer within {self.round_timeout:g} s")

    def _take(self, device: str, payload: FedMessage | None) -> None:
        agg = self.aggregator
        if payload is None:
            if device in agg.waiting_for():
                self.gone.setdefault(device, (agg.phase, "disconnected"))
            return
        if isinstance(payload, Abort):
            if device in self.invitation.parties and device not in self.gone:
                self.gone[device] = (agg.phase, payload.reason)
                if agg.phase == "advertise":
                    self.declined.add(device)
                log.info("computation %s: %s left: %s", self.computation_id, device, payload.reason)
            return
        if getattr(payload, "sender", None) != device:
            log.warning(
                "computation %s: %s sent a %s in another party's name; ignored",
                self.computation_id,
                device,
                payload.type,
            )
            return
        try:
            agg.handle(payload)
        except ProtocolViolation as exc:
            log.info(
                "computation %s: refused a message of %s: %s",
                self.computation_id,
                device,
                exc.reason,
            )

    async def _end(self, reason: str, spare: set[str] | None = None) -> None:
        """Tell every party that may still hold state to drop it; ``spare`` finished."""
        message = Abort(computation_id=self.computation_id, reason=reason[:1000])
        for device in self.invitation.parties:
            if device not in (spare or set()):
                await self._send(device, message)

    # -- the record -----------------------------------------------------------------------

    def _said(self, dropped: Mapping[str, str]) -> str:
        """What the devices that left in the failing round said, if anything."""
        phase = self.aggregator.phase
        last = max(
            dropped.values(),
            key=["advertise", "shares", "masked", "consistency", "unmask"].index,
            default=phase,
        )
        said = {
            reason: self.names.get(device, device)
            for device, (round_, reason) in self.gone.items()
            if round_ == last
            and reason not in ("offline", "disconnected")
            and not reason.startswith("did not answer")
        }
        if not said:
            return ""
        shown = "; ".join(f"{name}: {reason}" for reason, name in list(said.items())[:3])
        return f" ({shown})"

    def parties(self) -> dict[str, dict[str, Any]]:
        done = self.aggregator.phase == "done"
        survivors = set(self.aggregator.survivors) if done else set()
        out: dict[str, dict[str, Any]] = {}
        for device, name in self.names.items():
            entry: dict[str, Any] = {"name": name}
            if device in survivors:
                entry["status"] = "included"
                if device in self.gone:
                    entry["round"], reason = self.gone[device]
                    entry["reason"] = f"left after sending its masked input ({reason})"
            elif device in self.gone:
                entry["round"], entry["reason"] = self.gone[device]
                entry["status"] = "declined" if device in self.declined else "dropped"
            elif done:
                entry["status"], entry["round"] = "dropped", self.aggregator.dropped.get(device)
            else:
                entry["status"] = "aborted"
            out[device] = entry
        return out
