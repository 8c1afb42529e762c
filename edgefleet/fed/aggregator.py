"""The server side of secure aggregation: it relays what it cannot read, keeps
track of who dropped, and reconstructs only the sum. A pure state machine: the
transport feeds it messages (``on_*``) and, when a round is complete or its
deadline passes, closes the round and sends what the closer returns.

::

    advertise --rosters()--> shares --inboxes()--> masked --unmask_request()--> unmask --result()--> done
     U1 = on_advertise       U2 = on_shares        U3 = on_masked               U4 = on_unmask
                      any closer or result() with fewer than t parties --> aborted

Dropped parties are remembered per round (:attr:`Aggregator.dropped`). A party in
U2 but not U3 is *dropped*: its pairwise masks are rebuilt from its reconstructed
s-key. A party in U3 is a *survivor* whether or not it answers round 3: its
self-mask is removed with the shares of its seed, so its input is in the sum.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from fractions import Fraction
from typing import Literal

from edgefleet.fed import crypto
from edgefleet.fed.errors import BelowThreshold, ProtocolAborted, ProtocolViolation, TamperedMessage
from edgefleet.fed.messages import (
    Abort,
    AdvertiseKeys,
    EncryptedShare,
    FedMessage,
    Invitation,
    MaskedInput,
    Message,
    Roster,
    RosterEntry,
    ShareBundle,
    ShareInbox,
    UnmaskRequest,
    UnmaskResponse,
)
from edgefleet.fed.ring import Ring, pairwise_mask, remove_pairwise, self_mask

Phase = Literal["advertise", "shares", "masked", "unmask", "done", "aborted"]


class Aggregator:
    def __init__(self, invitation: Invitation) -> None:
        self.invitation = invitation
        self.computation_id = invitation.computation_id
        self.threshold = invitation.threshold
        self.phase: Phase = "advertise"
        self.dropped: dict[str, Phase] = {}  # party -> the round it did not answer
        self._parties = invitation.order()
        self._index = {party: i + 1 for i, party in enumerate(self._parties)}
        self._ring = Ring(invitation.params)
        self._adverts: dict[str, AdvertiseKeys] = {}  # U1
        self._bundles: dict[str, ShareBundle] = {}  # U2
        self._masked: dict[str, int] = {}  # U3
        self._responses: dict[str, UnmaskResponse] = {}  # U4
        self._result: list[Fraction] | None = None
        self.abort_reason: str | None = None

    def handle(self, message: FedMessage) -> None:
        """Dispatch one device message to its ``on_*`` method."""
        match message:
            case AdvertiseKeys():
                self.on_advertise(message)
            case ShareBundle():
                self.on_shares(message)
            case MaskedInput():
                self.on_masked(message)
            case UnmaskResponse():
                self.on_unmask(message)
            case _:
                raise ProtocolViolation(f"the server does not accept {message.type}")

    def abort(self, reason: str) -> Abort:
        """Give up (e.g. on a deadline of the transport); the message tells the parties."""
        self.phase, self.abort_reason, self._result = "aborted", reason, None
        return Abort(computation_id=self.computation_id, reason=reason)

    @property
    def survivors(self) -> list[str]:
        """U3: the parties whose inputs are (or will be) in the sum."""
        return sorted(self._masked)

    def waiting_for(self) -> set[str]:
        """Parties expected to answer the current round and not done yet."""
        rounds: dict[Phase, tuple[Collection[str], Collection[str]]] = {
            "advertise": (self._parties, self._adverts),
            "shares": (self._adverts, self._bundles),
            "masked": (self._bundles, self._masked),
            "unmask": (self._masked, self._responses),
        }
        expected, answered = rounds.get(self.phase, ((), ()))
        return set(expected) - set(answered)

    # --- round 0: advertise keys ------------------------------------------------------

    def on_advertise(self, msg: AdvertiseKeys) -> None:
        self._accept(msg, msg.sender, "advertise", self._parties, self._adverts)
        if set(msg.tags) != set(self._parties) - {msg.sender}:
            raise ProtocolViolation(f"{msg.sender} must tag its keys for every other party")
        self._adverts[msg.sender] = msg

    def rosters(self) -> dict[str, Roster]:
        """Close round 0; one roster per party that advertised (the tags addressed to it)."""
        self._close("advertise", "shares", self._parties, self._adverts)
        out: dict[str, Roster] = {}
        for recipient in self._adverts:
            entries = [
                RosterEntry(
                    party=a.sender,
                    s_public=a.s_public,
                    c_public=a.c_public,
                    tag=a.tags.get(recipient),
                )
                for a in self._adverts.values()
            ]
            out[recipient] = Roster(
                computation_id=self.computation_id,
                recipient=recipient,
                threshold=self.threshold,
                entries=entries,
            )
        return out

    # --- round 1: share keys ------------------------------------------------------

    def on_shares(self, msg: ShareBundle) -> None:
        self._accept(msg, msg.sender, "shares", self._adverts, self._bundles)
        recipients = [share.recipient for share in msg.shares]
        if sorted(recipients) != sorted(set(self._adverts) - {msg.sender}):
            raise ProtocolViolation(f"{msg.sender} must send one share to every advertised peer")
        if any(share.sender != msg.sender for share in msg.shares):
            raise ProtocolViolation(f"{msg.sender} sent shares in another party's name")
        self._bundles[msg.sender] = msg

    def inboxes(self) -> dict[str, ShareInbox]:
        """Close round 1; route each share to its recipient (only between parties of U2)."""
        self._close("shares", "masked", self._adverts, self._bundles)
        routed: dict[str, list[EncryptedShare]] = {recipient: [] for recipient in self._bundles}
        for bundle in self._bundles.values():
            for share in bundle.shares:
                if share.recipient in routed:
                    routed[share.recipient].append(share)
        return {
            recipient: ShareInbox(
                computation_id=self.computation_id, recipient=recipient, shares=shares
            )
            for recipient, shares in routed.items()
        }

    # --- round 2: masked input ----------------------------------------------------

    def on_masked(self, msg: MaskedInput) -> None:
        self._accept(msg, msg.sender, "masked", self._bundles, self._masked)
        try:
            self._masked[msg.sender] = self._ring.from_wire(msg.vector)
        except ValueError as exc:
            raise ProtocolViolation(f"masked input of {msg.sender}: {exc}") from exc

    def unmask_request(self) -> UnmaskRequest:
        """Close round 2: survivors (U3) and dropped (U2 - U3), the same for everyone."""
        self._close("masked", "unmask", self._bundles, self._masked)
        return UnmaskRequest(
            computation_id=self.computation_id,
            survivors=sorted(self._masked),
            dropped=sorted(set(self._bundles) - set(self._masked)),
        )

    # --- round 3: unmask ------------------------------------------------------------

    def on_unmask(self, msg: UnmaskResponse) -> None:
        self._accept(msg, msg.sender, "unmask", self._masked, self._responses)
        dropped = set(self._bundles) - set(self._masked)
        if set(msg.s_shares) != dropped or set(msg.b_shares) != set(self._masked):
            raise ProtocolViolation(f"{msg.sender} answered for other parties than requested")
        self._responses[msg.sender] = msg

    def result(self) -> list[float]:
        """Close round 3 and return sum(x_u for u in U3), decoded to floats."""
        return [float(value) for value in self.result_exact()]

    def result_exact(self) -> list[Fraction]:
        """The same sum as exact fixed-point fractions (value / 2**frac_bits)."""
        if self._result is None:
            self._close("unmask", "done", self._masked, self._responses)
            self._result = self._guard(self._reconstruct)
        return self._result

    def _reconstruct(self) -> list[Fraction]:
        ring, cid = self._ring, self.computation_id
        holders = sorted(self._responses, key=self._index.__getitem__)
        survivors = sorted(self._masked)
        total = 0
        for vector in self._masked.values():
            total = ring.add(total, vector)
        for u in survivors:
            seed = self._recover(holders, u, "b")
            total = ring.sub(total, self_mask(ring, seed, cid, u))
        for d in sorted(set(self._bundles) - set(self._masked)):
            s_private = self._recover(holders, d, "s")
            for u in survivors:
                shared = crypto.agree(s_private, self._adverts[u].s_public)
                total = remove_pairwise(ring, total, pairwise_mask(ring, shared, cid, u, d), u, d)
        return ring.decode(total)

    def _recover(self, holders: list[str], owner: str, kind: Literal["s", "b"]) -> bytes:
        """Shamir-combine t shares of ``owner``'s s-key or self-mask seed and check the
        result against what the owner advertised or committed to. With more than t
        holders, windows of t consecutive holders are tried in turn, so one bad share
        is tolerated when there is a spare."""
        t = self.threshold
        for start in range(len(holders) - t + 1):
            shares = [
                (self._index[h], self._share(h, owner, kind)) for h in holders[start : start + t]
            ]
            try:
                secret = crypto.combine(shares)
            except ValueError:
                continue
            if self._genuine(owner, kind, secret):
                return secret
        raise TamperedMessage(f"the shares of {owner}'s {kind}-secret do not reconstruct it")

    def _share(self, holder: str, owner: str, kind: Literal["s", "b"]) -> bytes:
        response = self._responses[holder]
        return response.s_shares[owner] if kind == "s" else response.b_shares[owner]

    def _genuine(self, owner: str, kind: Literal["s", "b"], secret: bytes) -> bool:
        if kind == "s":
            return crypto.public_key(secret) == self._adverts[owner].s_public
        commitment = crypto.commit(secret, self.computation_id, owner)
        return commitment == self._bundles[owner].self_mask_commitment

    # --- plumbing ---------------------------------------------------------------

    def _accept(
        self,
        msg: Message,
        sender: str,
        phase: Phase,
        expected: Collection[str],
        answered: Mapping[str, object],
    ) -> None:
        self._alive()
        if msg.computation_id != self.computation_id:
            raise ProtocolViolation(f"message for computation {msg.computation_id}")
        if self.phase != phase:
            raise ProtocolViolation(f"{sender}'s {phase} message arrived in round {self.phase}")
        if sender not in expected:
            raise ProtocolViolation(f"{sender} is not expected in round {phase}")
        if sender in answered:
            raise ProtocolViolation(f"{sender} already answered round {phase}")

    def _close(
        self,
        phase: Phase,
        following: Phase,
        expected: Collection[str],
        answered: Mapping[str, object],
    ) -> None:
        self._alive()
        if self.phase != phase:
            raise ProtocolViolation(f"cannot close round {phase} in round {self.phase}")
        for party in expected:
            if party not in answered:
                self.dropped.setdefault(party, phase)
        if len(answered) < self.threshold:
            reason = f"only {len(answered)} parties answered round {phase}; threshold is {self.threshold}"
            self.abort(reason)
            raise BelowThreshold(reason)
        self.phase = following

    def _alive(self) -> None:
        if self.phase == "aborted":
            raise ProtocolAborted(f"the computation was aborted: {self.abort_reason}")

    def _guard(self, step: Callable[[], list[Fraction]]) -> list[Fraction]:
        try:
            return step()
        except ProtocolAborted as exc:
            self.abort(exc.reason)
            raise
