"""The device side of secure aggregation: a pure state machine, messages in,
messages out, no I/O. The agent carries its messages; see :mod:`edgefleet.fed`
for the protocol and its trust assumptions.

::

    new --advertise()--> advertised --share_keys(Roster)--> shared
        --masked_input(ShareInbox)--> masked --consistency(Survivors)--> checked
        --unmask(UnmaskRequest)--> done
    any step --ProtocolAborted--> aborted   (secrets dropped, nothing more is sent)

A party deals only with its neighbours N(u) (:mod:`.graph`; everyone when the
graph is complete): it checks their keys, masks with them, shares to them, and
expects t of its holders N(u) + {u} at every step, refusing with a reason
naming the shortfall when too many of them drop. A :class:`ProtocolViolation`
(wrong round, misaddressed message) leaves the state unchanged; a
:class:`ProtocolAborted` ends the party for good. The party answers one unmask
request only, never with both shares of one peer, and only after t of its
holders confirmed (MAC over) the very survivor list it was shown.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, MutableMapping, Sequence
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt

from edgefleet.fed import codec, crypto, shamir
from edgefleet.fed.errors import (
    BelowThreshold,
    ProtocolAborted,
    ProtocolViolation,
    TamperedMessage,
    UnsafeRequest,
)
from edgefleet.fed.messages import (
    Abort,
    AdvertiseKeys,
    ConsistencyTags,
    FedMessage,
    Invitation,
    MaskedInput,
    Roster,
    RosterEntry,
    ShareBundle,
    ShareInbox,
    Survivors,
    UnmaskRequest,
    UnmaskResponse,
)
from edgefleet.fed.ring import Ring, Vector

Phase = Literal["new", "advertised", "shared", "masked", "checked", "done", "aborted"]
T = TypeVar("T")
_ADVERTISE = crypto.labelled("advertise")  # frame(DOMAIN, "advertise"): opens round-0 MACs
_CONSISTENCY = crypto.labelled("consistency")  # and round 3's
_ADVERTISE_MAC = crypto.labelled("advertise-mac")  # kdf infos, framed once (frames concatenate)
_SHARE_ENCRYPTION = crypto.labelled("share-encryption")


def lists_digest(computation_id: str, survivors: Sequence[str], dropped: Sequence[str]) -> bytes:
    """What the consistency MACs cover: the sorted U3 and dropped lists."""
    # party ids never hold NUL (messages.PartyId), so NUL-joined lists are unambiguous;
    # framed as bytes: the same frame as the text, without the text frame cache
    # hashing (and keeping) a 13 KB string per call at 1,000 parties
    listed = "\0".join(sorted(survivors)) + "\0\0" + "\0".join(sorted(dropped))
    return hashlib.sha256(crypto.frame("u3", computation_id, listed.encode())).digest()


class Party:
    def __init__(
        self,
        invitation: Invitation,
        party_id: str,
        long_term_private: bytes,
        vector: Sequence[float] | npt.NDArray[np.float64],
        pair_cache: MutableMapping[tuple[str, bytes], bytes] | None = None,
    ) -> None:
        """``long_term_private`` is the device's raw 32-byte X25519 key from enrollment;
        its public half must be the one the invitation lists for ``party_id``.
        ``pair_cache`` (optional, kept by a device across computations) maps
        (peer, peer's long-term public key) to ECDH(long-term u, long-term v): the
        same value every time, so a device that computes with the same peers again
        skips a third of its key exchanges. Keyed by the public key, a changed key
        never hits it; it is as secret as the long-term key itself."""
        if party_id not in invitation.parties:
            raise ProtocolViolation(f"{party_id} is not invited to {invitation.computation_id}")
        long_term = crypto.load(long_term_private)
        if crypto.public_key(long_term) != invitation.parties[party_id]:
            raise ProtocolViolation("the invitation lists another long-term key for this party")
        self.invitation = invitation
        self.party_id = party_id
        self.computation_id = invitation.computation_id
        self.phase: Phase = "new"
        self._ring = Ring(invitation.params)
        self._digest = invitation.digest()
        try:
            self._input: Vector | None = self._ring.encode(vector)
        except ValueError as exc:  # the message names no value: it may be relayed
            raise ProtocolViolation(f"input refused: {exc}") from exc
        self._order = invitation.order()
        self._index = invitation.indices()
        self.neighbours: frozenset[str] = invitation.neighbourhoods()[party_id]
        self.threshold = invitation.shape().threshold  # among the holders N(u) + {u}
        self._long_term: bytes | None = long_term
        self._pair_cache = pair_cache if pair_cache is not None else {}
        self._s_private: bytes | None = crypto.generate()
        self._c_private = crypto.generate()
        self._publics: tuple[bytes, bytes] = (b"", b"")  # s and c public keys, once advertised
        self._seed: bytes | None = None
        self._auth: dict[str, crypto.MacKey] = {}  # neighbour -> MAC key (long-term ECDH)
        # neighbour -> crypto.pair_context(cid, u, v): framed once in round 0 for the
        # three keys of the pair (MAC, share encryption, mask) instead of once per key
        self._contexts: dict[str, bytes] = {}
        # neighbour -> its authenticated round-0 s-key (the key only: the roster's
        # models are freed with it, not kept alive by every party until the end)
        self._peers: dict[str, bytes] = {}
        self._share_keys_: dict[str, crypto.Sealer] = {}  # neighbour -> AES-GCM of the pair
        self._held: dict[str, tuple[int, int]] = {}  # owner -> (s-share, b-share) held here
        self._lists: bytes | None = None  # digest of the survivor list this party MACed
        # that list's survivors and dropped among the holders (O(k): all the unmask
        # step asks of it; the O(n) sets are not kept by every party to the end)
        self._checked: tuple[set[str], set[str]] = (set(), set())

    def handle(self, message: FedMessage) -> FedMessage | None:
        """Dispatch one server message to its step; returns the reply to send, if any."""
        match message:
            case Roster():
                return self.share_keys(message)
            case ShareInbox():
                return self.masked_input(message)
            case Survivors():
                return self.consistency(message)
            case UnmaskRequest():
                return self.unmask(message)
            case Abort():
                self._addressed(message.computation_id, self.party_id)
                self.abort()
                return None
            case _:
                raise ProtocolViolation(f"a party does not accept {message.type}")

    # --- round 0 --------------------------------------------------------------------

    def advertise(self) -> AdvertiseKeys:
        self._expect("new")
        return self._guard(self._advertise)

    def _advertise(self) -> AdvertiseKeys:
        assert self._long_term is not None and self._s_private is not None
        u, cid, digest = self.party_id, self.computation_id, self._digest
        s_public, c_public = crypto.public_key(self._s_private), crypto.public_key(self._c_private)
        self._publics = (s_public, c_public)
        tags: dict[str, bytes] = {}
        # mac(key, "advertise", cid, u, v, s, c, digest), framed around the one field
        # that changes per neighbour (frames concatenate: crypto.frame)
        before = _ADVERTISE + crypto.frame(cid, u)
        after = crypto.frame(s_public, c_public, digest)
        for v in sorted(self.neighbours):
            peer_key = (v, self.invitation.parties[v])
            shared = self._pair_cache.get(peer_key)
            if shared is None:
                shared = self._pair_cache[peer_key] = crypto.agree(self._long_term, peer_key[1])
            context = self._contexts[v] = crypto.pair_context(cid, u, v)
            key = self._auth[v] = crypto.MacKey(crypto.derive(shared, _ADVERTISE_MAC + context))
            tags[v] = key.tag(before + crypto.framed(v) + after)
        self._long_term = None
        self.phase = "advertised"
        return AdvertiseKeys.model_construct(
            computation_id=cid, sender=u, s_public=s_public, c_public=c_public, tags=tags
        )

    # --- round 1 --------------------------------------------------------------------

    def share_keys(self, roster: Roster) -> ShareBundle:
        """Check every neighbour's advertised keys, then Shamir-share the s-key and a
        fresh self-mask seed to the holders, one AES-GCM record per neighbour."""
        self._expect("advertised")
        self._addressed(roster.computation_id, roster.recipient)
        return self._guard(lambda: self._share_keys(roster))

    def _share_keys(self, roster: Roster) -> ShareBundle:
        assert self._s_private is not None
        u, cid, t = self.party_id, self.computation_id, self.threshold
        if roster.threshold != self.invitation.threshold:
            raise TamperedMessage(
                f"roster threshold {roster.threshold} is not the invitation's "
                f"{self.invitation.threshold}"
            )
        entries: dict[str, RosterEntry] = {}
        near = self.neighbours | {u}
        for entry in roster.entries:
            if entry.party not in near or entry.party in entries:
                raise TamperedMessage(f"roster lists {entry.party} unexpectedly")
            entries[entry.party] = entry
        mine = entries.pop(u, None)
        if mine is None or (mine.s_public, mine.c_public) != self._publics:
            raise TamperedMessage("the roster does not carry this party's own keys")
        # each entry's tag: mac(key, "advertise", cid, v, u, its s, its c, digest)
        head, me, digest = _ADVERTISE + crypto.framed(cid), crypto.framed(u), self._digest
        for v, e in entries.items():
            signed = head + crypto.framed(v) + me + crypto.frame(e.s_public, e.c_public, digest)
            if e.tag is None or not self._auth[v].verify(e.tag, signed):
                raise TamperedMessage(
                    f"the keys advertised for {v} are not authentic, or {v} was sent "
                    "another invitation"
                )
        self._short("advertised keys", len(entries) + 1, t)

        self._seed = os.urandom(32)
        holders = sorted([u, *entries], key=self._index.__getitem__)
        secrets = [
            int.from_bytes(crypto.raw(self._s_private), "big"),
            int.from_bytes(self._seed, "big"),
        ]
        shares = shamir.split(secrets, t, [self._index[h] for h in holders])
        records = []
        nonces = os.urandom(12 * len(holders))  # one draw for every record's nonce
        sealing = crypto.frame(cid, u)  # each record's associated data: frame(cid, u, holder)
        for i, (holder, (s_share, b_share)) in enumerate(zip(holders, shares, strict=True)):
            if holder == u:
                self._held[u] = (s_share, b_share)
                continue
            plaintext = shamir.to_bytes(s_share) + shamir.to_bytes(b_share)
            key = self._share_keys_[holder] = self._share_key(entries[holder])
            nonce = nonces[12 * i : 12 * i + 12]
            nonce, ciphertext = crypto.seal(key, sealing + crypto.framed(holder), plaintext, nonce)
            records.append((self._index[holder] - 1, nonce, ciphertext))
        self._peers = {v: e.s_public for v, e in entries.items()}
        self.phase = "shared"
        return ShareBundle.model_construct(
            computation_id=cid,
            sender=u,
            shares=codec.pack_shares(records),
            self_mask_commitment=crypto.commit(self._seed, cid, u),
        )

    def _share_key(self, peer: RosterEntry) -> crypto.Sealer:
        """The pair's share cipher, keyed once for both rounds (seal, then open)."""
        shared = crypto.agree(self._c_private, peer.c_public)
        # kdf(shared, "share-encryption", cid, *pair(u, v)), the info framed piecewise
        return crypto.sealer(crypto.derive(shared, _SHARE_ENCRYPTION + self._contexts[peer.party]))

    # --- round 2 --------------------------------------------------------------------

    def masked_input(self, inbox: ShareInbox) -> MaskedInput:
        """Open the neighbours' shares, then send y_u = x_u + PRG(b_u) +- PRG(s_uv)
        for every neighbour v that shared keys."""
        self._expect("shared")
        self._addressed(inbox.computation_id, inbox.recipient)
        try:
            records = codec.unpack_shares(inbox.shares, len(self._order))
        except codec.FrameError as exc:
            raise ProtocolViolation(f"the inbox is malformed: {exc}") from exc
        senders = [self._order[index] for index, _, _ in records]
        if len(set(senders)) != len(senders) or not all(v in self._peers for v in senders):
            raise ProtocolViolation("the inbox holds shares from unexpected or repeated senders")
        return self._guard(lambda: self._masked_input(senders, records))

    def _masked_input(
        self, senders: list[str], records: list[tuple[int, bytes, bytes]]
    ) -> MaskedInput:
        assert self._s_private is not None and self._seed is not None and self._input is not None
        u, cid = self.party_id, self.computation_id
        framed_cid, framed_u = crypto.framed(cid), crypto.framed(u)  # AAD: frame(cid, sender, u)
        for sender, (_, nonce, ciphertext) in zip(senders, records, strict=True):
            key = self._share_keys_[sender]
            associated = framed_cid + crypto.framed(sender) + framed_u
            plaintext = crypto.unseal(key, nonce, associated, ciphertext)
            try:
                half = shamir.SHARE_BYTES
                pair = (shamir.from_bytes(plaintext[:half]), shamir.from_bytes(plaintext[half:]))
            except ValueError as exc:
                raise TamperedMessage(f"the share from {sender} is malformed") from exc
            self._held[sender] = pair
        self._short("shared keys", len(self._held), self.threshold)

        y, masker = self._input, self._ring.masker()  # y is this party's own copy
        masker.self_mask(y, self._seed, cid, u, 1)
        for v in self._held:
            if v != u:
                shared = crypto.agree(self._s_private, self._peers[v])
                masker.pairwise_in(y, shared, self._contexts[v], 1 if v > u else -1)
        self._input = self._seed = self._s_private = None  # only shares may be revealed now
        self.phase = "masked"
        return MaskedInput.model_construct(  # built from checked parts: no re-validation
            computation_id=cid, sender=u, vector=self._ring.to_wire(y)
        )

    # --- round 3: consistency -------------------------------------------------------

    def consistency(self, message: Survivors) -> ConsistencyTags:
        """MAC the survivor list for each surviving neighbour, so that in round 4 each
        of them can tell whether the server showed everyone the same list."""
        self._expect("masked")
        self._addressed(message.computation_id, self.party_id)
        return self._guard(lambda: self._consistency(message))

    def _consistency(self, message: Survivors) -> ConsistencyTags:
        u, cid = self.party_id, self.computation_id
        survivors, dropped = self._check_lists(message.survivors, message.dropped)
        self._lists = lists_digest(cid, message.survivors, message.dropped)
        self._checked = (survivors.intersection(self._held), dropped.intersection(self._held))
        # mac(key, "consistency", cid, u, v, lists), framed once around v
        before, after = _CONSISTENCY + crypto.frame(cid, u), crypto.frame(self._lists)
        tags = {
            v: self._auth[v].tag(before + crypto.framed(v) + after)
            for v in sorted(v for v in self._held if v in survivors)
            if v != u
        }
        self.phase = "checked"
        return ConsistencyTags.model_construct(computation_id=cid, sender=u, tags=tags)

    def _check_lists(self, survivors_: list[str], dropped_: list[str]) -> tuple[set[str], set[str]]:
        """The lists are O(n) long, the party's own part O(k): one pass builds the
        sets, the rest is checked against them (1,000 names: a set union or copy
        fewer per message)."""
        survivors, dropped = set(survivors_), set(dropped_)
        if not survivors.isdisjoint(dropped):
            both = sorted(survivors & dropped)
            raise UnsafeRequest(f"the server lists {', '.join(both)} as both survived and dropped")
        if len(survivors) != len(survivors_) or len(dropped) != len(dropped_):
            raise UnsafeRequest("the survivor list repeats a party")
        invited = self._index.keys()
        if not (survivors <= invited and dropped <= invited):
            raise UnsafeRequest("the survivor list names parties that are not invited")
        if self.party_id not in survivors or not all(
            v in survivors or v in dropped for v in self._held
        ):
            raise UnsafeRequest("the survivor list does not match the parties that shared keys")
        t = self.invitation.threshold
        if len(survivors) < t:
            raise BelowThreshold(f"{len(survivors)} parties sent masked input, threshold is {t}")
        self._short("sent masked input", sum(v in survivors for v in self._held), self.threshold)
        return survivors, dropped

    # --- round 4: unmask ------------------------------------------------------------

    def unmask(self, request: UnmaskRequest) -> UnmaskResponse:
        """Reveal the s-key share of each dropped neighbour and the self-mask share of
        each surviving one, once, after checking that t holders MACed this very
        survivor list (a server showing different lists to different parties
        cannot collect t confirmations for two of them)."""
        if self.phase == "done":
            self.abort()
            raise UnsafeRequest("a second unmask request is refused; it could unmask a peer")
        self._expect("checked")
        self._addressed(request.computation_id, request.recipient)
        return self._guard(lambda: self._unmask(request))

    def _unmask(self, request: UnmaskRequest) -> UnmaskResponse:
        u, cid = self.party_id, self.computation_id
        lists = lists_digest(cid, request.survivors, request.dropped)
        if lists != self._lists:
            raise TamperedMessage(
                "the unmask request carries another survivor list than the one this party "
                "confirmed: the server is equivocating"
            )
        # the same digest means the same sorted lists: what round 3 checked holds
        survivors, dropped = self._checked  # among this party's holders
        # each neighbour's tag: mac(key, "consistency", cid, v, u, lists)
        head, after = _CONSISTENCY + crypto.framed(cid), crypto.frame(u, lists)
        confirmed = 1 + sum(  # this party's own confirmation, then its neighbours'
            1
            for v, tag in request.tags.items()
            if v != u
            and v in self._held
            and v in survivors
            and self._auth[v].verify(tag, head + crypto.framed(v) + after)
        )
        if confirmed < self.threshold:
            raise TamperedMessage(
                f"only {confirmed} of this party's holders confirmed the survivor list, "
                f"{self.threshold} needed: the server may be showing different lists"
            )
        response = UnmaskResponse.model_construct(
            computation_id=cid,
            sender=u,
            s_shares={v: shamir.to_bytes(self._held[v][0]) for v in sorted(dropped)},
            b_shares={v: shamir.to_bytes(self._held[v][1]) for v in sorted(survivors)},
        )
        self._held = {}
        self.phase = "done"
        return response

    # --- plumbing ---------------------------------------------------------------

    def _short(self, what: str, have: int, need: int) -> None:
        """The clear refusal when too many of this party's neighbours dropped."""
        if have < need:
            raise BelowThreshold(
                f"only {have} of this party's {len(self.neighbours) + 1} holders {what}; "
                f"{need} are needed (too many of its neighbours dropped)"
            )

    def _expect(self, phase: Phase) -> None:
        if self.phase != phase:
            raise ProtocolViolation(f"{self.party_id} is {self.phase}, not {phase}")

    def _addressed(self, computation_id: str, recipient: str) -> None:
        if (computation_id, recipient) != (self.computation_id, self.party_id):
            raise ProtocolViolation(f"message for {recipient} in {computation_id}")

    def _guard(self, step: Callable[[], T]) -> T:
        try:
            return step()
        except ProtocolAborted:
            self.abort()
            raise

    def abort(self) -> None:
        """End this party (the server sent ``fed.abort``, or a step failed): drop every secret."""
        self.phase = "aborted"
        self._input = self._seed = self._s_private = self._long_term = None
        self._held, self._peers, self._auth, self._share_keys_ = {}, {}, {}, {}
        self._contexts = {}
