"""The server side of secure aggregation: it relays what it cannot read, keeps
track of who dropped, and reconstructs only the sum. A pure state machine: the
transport feeds it messages (``on_*``) and, when a round is complete or its
deadline passes, closes the round and sends what the closer returns.

::

    advertise --rosters()--> shares --inboxes()--> masked --survivors()--> consistency
     U1 = on_advertise       U2 = on_shares        U3 = on_masked          U4 = on_consistency
      --unmask_requests()--> unmask --result()--> done
                             U5 = on_unmask
          any closer or result() that cannot go on --> aborted

Dropped parties are remembered per round (:attr:`Aggregator.dropped`). A party in
U2 but not U3 is *dropped*: its pairwise masks are rebuilt from its reconstructed
s-key. A party in U3 is a *survivor* whether or not it answers later rounds: its
self-mask is removed with the shares of its seed, so its input is in the sum.
Messages the aggregator builds from what it already validated are assembled with
``model_construct`` (no second validation: at 1,000 parties re-checking every
roster entry and survivor list cost the server more than reconstruction).
Every secret needs t shares from its owner's holders (N(o) + {o}, :mod:`.graph`);
closing a round checks that each one still can get them, and aborts with the
name of the first that cannot, rather than waiting for a reconstruction to fail.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from fractions import Fraction
from typing import Literal

from edgefleet.fed import codec, crypto, graph, messages, shamir
from edgefleet.fed.errors import BelowThreshold, ProtocolAborted, ProtocolViolation, TamperedMessage
from edgefleet.fed.ring import MaskJob, Ring, Vector, apply_all

Phase = Literal["advertise", "shares", "masked", "consistency", "unmask", "done", "aborted"]
Kind = Literal["s", "b"]


_new_entry = messages.RosterEntry.__new__
_set = object.__setattr__  # frozen models are filled past their __setattr__


def roster_entry(
    party: str, s_public: bytes, c_public: bytes, tag: bytes | None
) -> messages.RosterEntry:
    """What ``RosterEntry.model_construct`` builds (from checked advertisements: no
    validation), without its per-call walk over the fields: the server builds k
    entries per party each computation (39,000 at 1,000 parties), and that walk
    was a fifth of its work. Pinned equal to ``model_construct`` in the unit tests."""
    entry = _new_entry(messages.RosterEntry)
    _set(
        entry, "__dict__", {"party": party, "s_public": s_public, "c_public": c_public, "tag": tag}
    )
    _set(entry, "__pydantic_fields_set__", {"party", "s_public", "c_public", "tag"})
    _set(entry, "__pydantic_extra__", None)
    _set(entry, "__pydantic_private__", None)
    return entry


class Aggregator:
    def __init__(self, invitation: messages.Invitation, threads: int = 2) -> None:
        self.invitation = invitation
        self.threads = threads  # for removing the masks (see ring.apply_all)
        self.worker_cpu = 0.0  # CPU seconds those threads spent
        self.computation_id = invitation.computation_id
        self.threshold = invitation.threshold  # fewest inputs a released sum may hold
        self.phase: Phase = "advertise"
        self.dropped: dict[str, Phase] = {}  # party -> the round it did not answer
        self._parties = invitation.order()
        self._index = invitation.indices()
        self._neighbours = invitation.neighbourhoods()
        cycle = graph.cycle(tuple(self._parties), invitation.digest())
        self._position = {party: i for i, party in enumerate(cycle)}  # on the graph's cycle
        self._t = invitation.shape().threshold  # shares per secret
        self._ring = Ring(invitation.params)
        self._adverts: dict[str, messages.AdvertiseKeys] = {}  # U1
        self._bundles: dict[str, messages.ShareBundle] = {}  # U2
        self._masked: dict[str, Vector] = {}  # U3
        self._tags: dict[str, messages.ConsistencyTags] = {}  # U4
        self._responses: dict[str, messages.UnmaskResponse] = {}  # U5
        self._result: Vector | None = None  # the unmasked sum
        self.abort_reason: str | None = None

    def handle(self, message: messages.FedMessage) -> None:
        """Dispatch one device message to its ``on_*`` method."""
        match message:
            case messages.AdvertiseKeys():
                self.on_advertise(message)
            case messages.ShareBundle():
                self.on_shares(message)
            case messages.MaskedInput():
                self.on_masked(message)
            case messages.ConsistencyTags():
                self.on_consistency(message)
            case messages.UnmaskResponse():
                self.on_unmask(message)
            case _:
                raise ProtocolViolation(f"the server does not accept {message.type}")

    def abort(self, reason: str) -> messages.Abort:
        """Give up (e.g. on a deadline of the transport); the message tells the parties."""
        self.phase, self.abort_reason, self._result = "aborted", reason, None
        return messages.Abort(computation_id=self.computation_id, reason=reason)

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
            "consistency": (self._masked, self._tags),
            "unmask": (self._tags, self._responses),
        }
        expected, answered = rounds.get(self.phase, ((), ()))
        return set(expected) - set(answered)

    # --- round 0: advertise keys ------------------------------------------------------

    def on_advertise(self, msg: messages.AdvertiseKeys) -> None:
        self._accept(msg, msg.sender, "advertise", self._parties, self._adverts)
        if set(msg.tags) != self._neighbours[msg.sender]:
            raise ProtocolViolation(f"{msg.sender} must tag its keys for each of its neighbours")
        self._adverts[msg.sender] = msg

    def rosters(self) -> dict[str, messages.Roster]:
        """Close round 0; one roster per party that advertised: its neighbours'
        advertisements (with the tags addressed to it) and its own."""
        self._close("advertise", "shares", self._parties, self._adverts)
        self._holders_left(self._adverts, self._adverts, "advertised keys")
        out: dict[str, messages.Roster] = {}
        for recipient in self._adverts:
            near = self._neighbours[recipient] | {recipient}
            entries = [
                roster_entry(a.sender, a.s_public, a.c_public, a.tags.get(recipient))
                for a in (self._adverts[p] for p in sorted(near) if p in self._adverts)
            ]
            out[recipient] = messages.Roster.model_construct(
                computation_id=self.computation_id,
                recipient=recipient,
                threshold=self.threshold,
                entries=entries,
            )
        return out

    # --- round 1: share keys ------------------------------------------------------

    def on_shares(self, msg: messages.ShareBundle) -> None:
        self._accept(msg, msg.sender, "shares", self._adverts, self._bundles)
        try:
            indices = codec.record_indices(msg.shares, len(self._parties))
        except codec.FrameError as exc:
            raise ProtocolViolation(f"shares of {msg.sender}: {exc}") from exc
        recipients = [self._parties[index] for index in indices]
        expected = {v for v in self._neighbours[msg.sender] if v in self._adverts}  # O(k), not O(n)
        if len(recipients) != len(expected) or set(recipients) != expected:
            raise ProtocolViolation(
                f"{msg.sender} must send one share to each advertised neighbour"
            )
        self._bundles[msg.sender] = msg

    def inboxes(self) -> dict[str, messages.ShareInbox]:
        """Close round 1; route each record to its recipient (only within U2),
        readdressed with its sender's index."""
        self._close("shares", "masked", self._adverts, self._bundles)
        self._holders_left(self._bundles, self._bundles, "shared keys")
        routed: dict[str, list[bytes]] = {recipient: [] for recipient in self._bundles}
        size = messages.SHARE_RECORD
        for sender, bundle in self._bundles.items():
            index = self._index[sender] - 1
            data = bundle.shares  # checked by on_shares
            for i, to in enumerate(codec.record_indices(data, len(self._parties))):
                recipient = self._parties[to]
                if recipient in routed and recipient != sender:
                    routed[recipient].append(
                        codec.readdress(data[i * size : (i + 1) * size], index)
                    )
        return {
            recipient: messages.ShareInbox.model_construct(
                computation_id=self.computation_id, recipient=recipient, shares=b"".join(records)
            )
            for recipient, records in routed.items()
        }

    # --- round 2: masked input ----------------------------------------------------

    def on_masked(self, msg: messages.MaskedInput) -> None:
        self._accept(msg, msg.sender, "masked", self._bundles, self._masked)
        try:
            self._masked[msg.sender] = self._ring.from_wire(msg.vector)
        except ValueError as exc:
            raise ProtocolViolation(f"masked input of {msg.sender}: {exc}") from exc

    def survivor_list(self) -> messages.Survivors:
        """Close round 2: survivors (U3) and dropped (U2 - U3), the same for everyone."""
        self._close("masked", "consistency", self._bundles, self._masked)
        self._holders_left(self._bundles, self._masked, "sent masked input")
        return messages.Survivors(
            computation_id=self.computation_id,
            survivors=sorted(self._masked),
            dropped=sorted(set(self._bundles) - set(self._masked)),
        )

    # --- round 3: consistency -------------------------------------------------------

    def on_consistency(self, msg: messages.ConsistencyTags) -> None:
        self._accept(msg, msg.sender, "consistency", self._masked, self._tags)
        if set(msg.tags) != {v for v in self._neighbours[msg.sender] if v in self._masked}:
            raise ProtocolViolation(f"{msg.sender} must tag the list for each surviving neighbour")
        self._tags[msg.sender] = msg

    def unmask_requests(self) -> dict[str, messages.UnmaskRequest]:
        """Close round 3; to each party that sent tags, the lists and the tags its
        neighbours addressed to it (the server can forge none of them)."""
        self._close("consistency", "unmask", self._masked, self._tags)
        self._holders_left(self._bundles, self._tags, "confirmed the survivor list")
        addressed: dict[str, dict[str, bytes]] = defaultdict(dict)
        for sender, msg in self._tags.items():
            for recipient, tag in msg.tags.items():
                addressed[recipient][sender] = tag
        survivors = sorted(self._masked)
        dropped = sorted(set(self._bundles) - set(self._masked))
        return {
            r: messages.UnmaskRequest.model_construct(
                computation_id=self.computation_id,
                recipient=r,
                survivors=survivors,
                dropped=dropped,
                tags={s: t for s, t in addressed[r].items() if s in self._tags},
            )
            for r in self._tags
        }

    # --- round 4: unmask ------------------------------------------------------------

    def on_unmask(self, msg: messages.UnmaskResponse) -> None:
        self._accept(msg, msg.sender, "unmask", self._tags, self._responses)
        near = self._neighbours[msg.sender] | {msg.sender}
        held = {v for v in near if v in self._bundles}  # per message O(k), not O(n)
        alive = {v for v in held if v in self._masked}
        if set(msg.s_shares) != held - alive or set(msg.b_shares) != alive:
            raise ProtocolViolation(f"{msg.sender} answered for other parties than requested")
        self._responses[msg.sender] = msg

    def result(self) -> list[float]:
        """Close round 4 and return sum(x_u for u in U3), decoded to floats."""
        return self._ring.decode_floats(self._unmasked())

    def result_exact(self) -> list[Fraction]:
        """The same sum as exact fixed-point fractions (value / 2**frac_bits)."""
        return self._ring.decode(self._unmasked())

    def _unmasked(self) -> Vector:
        if self._result is None:
            self._close("unmask", "done", self._tags, self._responses)
            self._result = self._guard(self._reconstruct)
        return self._result

    def _reconstruct(self) -> Vector:
        """One pass over one accumulator: add the masked inputs, then remove every
        self-mask and every dropped party's pairwise masks in place."""
        survivors = sorted(self._masked)
        dropped = sorted(set(self._bundles) - set(self._masked))
        seeds = self._recover_all(survivors, "b")
        s_keys = self._recover_all(dropped, "s")
        masked = iter(self._masked.values())
        total = next(masked).copy()
        for vector in masked:
            self._ring.add_into(total, vector)
        jobs = [self._self_mask_job(seeds[u], u) for u in survivors]
        for d in dropped:
            s_key = crypto.load(s_keys[d])
            for u in sorted(self._neighbours[d] & set(self._masked)):
                jobs.append(self._pairwise_job(s_key, u, d))
        self.worker_cpu += apply_all(self._ring, total, jobs, self.threads)
        return total

    def _self_mask_job(self, seed: bytes, u: str) -> MaskJob:
        cid = self.computation_id
        return lambda masker, acc: masker.self_mask(acc, seed, cid, u, -1)

    def _pairwise_job(self, s_key: bytes, u: str, d: str) -> MaskJob:
        """Survivor u's mask with dropped d, the exchange done in the job (GIL-free)."""
        cid, public = self.computation_id, self._adverts[u].s_public
        return lambda masker, acc: masker.pairwise(acc, crypto.agree(s_key, public), cid, u, d, -1)

    def _recover_all(self, owners: list[str], kind: Kind) -> dict[str, bytes]:
        """Every owner's secret, in batches that share one Lagrange combination
        (:func:`shamir.combine`): owners are taken in the graph's cycle order, and a
        batch grows while t holders answered for all of its owners (neighbours on
        the cycle share all but a few holders, so ~k/2 owners share one set of
        coefficients instead of one inversion each; complete graph: one batch)."""
        commons: list[set[str]] = []  # holders that answered for every owner of a batch
        batches: list[list[str]] = []
        for owner in sorted(owners, key=self._position.__getitem__):
            holders = self._holders(owner)
            if len(holders) < self._t:
                raise BelowThreshold(
                    f"only {len(holders)} of {owner}'s holders answered; {self._t} are needed"
                )
            common = commons[-1].intersection(holders) if commons else set()
            if len(common) >= self._t:
                commons[-1] = common
                batches[-1].append(owner)
            else:
                commons.append(set(holders))
                batches.append([owner])
        out: dict[str, bytes] = {}
        for common, batch in zip(commons, batches, strict=True):
            chosen = sorted(common, key=self._index.__getitem__)[: self._t]
            xs = [self._index[h] for h in chosen]
            rows = [[self._share(h, o, kind) for o in batch] for h in chosen]
            for owner, value in zip(batch, shamir.combine(xs, rows), strict=True):
                secret = value.to_bytes(33, "big")
                if secret[0] == 0 and self._genuine(owner, kind, secret[1:]):
                    out[owner] = secret[1:]
                else:
                    out[owner] = self._recover_slowly(owner, kind)
        return out

    def _recover_slowly(self, owner: str, kind: Kind) -> bytes:
        """One owner, trying windows of t consecutive holders in turn, so one bad
        share is tolerated when there is a spare."""
        holders, t = self._holders(owner), self._t
        for start in range(len(holders) - t + 1):
            window = holders[start : start + t]
            rows = [[self._share(h, owner, kind)] for h in window]
            secret = shamir.combine([self._index[h] for h in window], rows)[0].to_bytes(33, "big")
            if secret[0] == 0 and self._genuine(owner, kind, secret[1:]):
                return secret[1:]
        raise TamperedMessage(f"the shares of {owner}'s {kind}-secret do not reconstruct it")

    def _holders(self, owner: str) -> list[str]:
        near = self._neighbours[owner] | {owner}
        return sorted((h for h in near if h in self._responses), key=self._index.__getitem__)

    def _share(self, holder: str, owner: str, kind: Kind) -> int:
        response = self._responses[holder]
        raw = response.s_shares[owner] if kind == "s" else response.b_shares[owner]
        try:
            return shamir.from_bytes(raw)
        except ValueError:
            return 0  # not a field element: the reconstruction will not check out

    def _genuine(self, owner: str, kind: Kind, secret: bytes) -> bool:
        if kind == "s":
            return crypto.public_key(secret) == self._adverts[owner].s_public
        commitment = crypto.commit(secret, self.computation_id, owner)
        return commitment == self._bundles[owner].self_mask_commitment

    # --- plumbing ---------------------------------------------------------------

    def _holders_left(self, owners: Collection[str], present: Collection[str], what: str) -> None:
        """Abort, naming the party, if some secret can no longer get t shares."""
        live = set(present)
        for owner in sorted(owners):
            have = len((self._neighbours[owner] | {owner}) & live)
            if have < self._t:
                reason = (
                    f"only {have} of {owner}'s holders {what}; {self._t} are needed "
                    "(too many of its neighbours dropped)"
                )
                self.abort(reason)
                raise BelowThreshold(reason)

    def _accept(
        self,
        msg: messages.Message,
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

    def _guard(self, step: Callable[[], Vector]) -> Vector:
        try:
            return step()
        except ProtocolAborted as exc:
            self.abort(exc.reason)
            raise
