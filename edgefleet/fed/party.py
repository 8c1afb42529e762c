"""The device side of secure aggregation: a pure state machine, messages in,
messages out, no I/O. The agent carries its messages; see :mod:`edgefleet.fed`
for the protocol and its trust assumptions.

::

    new --advertise()--> advertised --share_keys(Roster)--> shared
        --masked_input(ShareInbox)--> masked --unmask(UnmaskRequest)--> done
    any step --ProtocolAborted--> aborted   (secrets dropped, nothing more is sent)

A :class:`ProtocolViolation` (wrong round, misaddressed message, malformed roster)
leaves the state unchanged; a :class:`ProtocolAborted` ends the party for good.
The party answers one unmask request only, and never with both the s-key share
and the self-mask share of the same peer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

from pydantic import ValidationError

from edgefleet.fed import crypto
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
    EncryptedShare,
    FedMessage,
    Invitation,
    MaskedInput,
    Roster,
    RosterEntry,
    ShareBundle,
    ShareInbox,
    SharePayload,
    UnmaskRequest,
    UnmaskResponse,
)
from edgefleet.fed.ring import Ring, add_pairwise, pairwise_mask, self_mask

Phase = Literal["new", "advertised", "shared", "masked", "done", "aborted"]
T = TypeVar("T")


class Party:
    def __init__(
        self,
        invitation: Invitation,
        party_id: str,
        long_term_private: bytes,
        vector: Sequence[float],
    ) -> None:
        """``long_term_private`` is the device's raw 32-byte X25519 key from enrollment;
        its public half must be the one the invitation lists for ``party_id``."""
        if party_id not in invitation.parties:
            raise ProtocolViolation(f"{party_id} is not invited to {invitation.computation_id}")
        if crypto.public_key(long_term_private) != invitation.parties[party_id]:
            raise ProtocolViolation("the invitation lists another long-term key for this party")
        self.invitation = invitation
        self.party_id = party_id
        self.computation_id = invitation.computation_id
        self.phase: Phase = "new"
        self._ring = Ring(invitation.params)
        self._digest = invitation.digest()
        try:
            self._input: int | None = self._ring.encode(vector)
        except ValueError as exc:  # the message names no value: it may be relayed
            raise ProtocolViolation(f"input refused: {exc}") from exc
        self._index = {party: i + 1 for i, party in enumerate(invitation.order())}
        self._long_term: bytes | None = long_term_private
        self._s_private: bytes | None = crypto.new_private_key()
        self._c_private = crypto.new_private_key()
        self._seed: bytes | None = None
        self._auth: dict[str, bytes] = {}  # peer -> HMAC key from the long-term ECDH
        self._peers: dict[str, RosterEntry] = {}  # authenticated round-0 keys
        self._held: dict[str, SharePayload] = {}  # shares this party keeps, by owner

    def handle(self, message: FedMessage) -> FedMessage | None:
        """Dispatch one server message to its step; returns the reply to send, if any."""
        match message:
            case Roster():
                return self.share_keys(message)
            case ShareInbox():
                return self.masked_input(message)
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
        tags: dict[str, bytes] = {}
        for v, long_term_public in self.invitation.parties.items():
            if v != u:
                shared = crypto.agree(self._long_term, long_term_public)
                self._auth[v] = crypto.kdf(shared, "advertise-mac", cid, *crypto.pair(u, v))
                tags[v] = crypto.mac(
                    self._auth[v], "advertise", cid, u, v, s_public, c_public, digest
                )
        self._long_term = None
        self.phase = "advertised"
        return AdvertiseKeys(
            computation_id=cid, sender=u, s_public=s_public, c_public=c_public, tags=tags
        )

    # --- round 1 --------------------------------------------------------------------

    def share_keys(self, roster: Roster) -> ShareBundle:
        """Check every advertised key, then Shamir-share the s-key and a fresh
        self-mask seed, one AES-GCM ciphertext per peer (the server cannot read them)."""
        self._expect("advertised")
        self._addressed(roster.computation_id, roster.recipient)
        return self._guard(lambda: self._share_keys(roster))

    def _share_keys(self, roster: Roster) -> ShareBundle:
        assert self._s_private is not None
        u, cid, t = self.party_id, self.computation_id, self.invitation.threshold
        if roster.threshold != t:
            raise TamperedMessage(
                f"roster threshold {roster.threshold} is not the invitation's {t}"
            )
        entries: dict[str, RosterEntry] = {}
        for entry in roster.entries:
            if entry.party not in self.invitation.parties or entry.party in entries:
                raise TamperedMessage(f"roster lists {entry.party} unexpectedly")
            entries[entry.party] = entry
        mine = entries.pop(u, None)
        if mine is None or (mine.s_public, mine.c_public) != (
            crypto.public_key(self._s_private),
            crypto.public_key(self._c_private),
        ):
            raise TamperedMessage("the roster does not carry this party's own keys")
        for v, e in entries.items():
            fields = ("advertise", cid, v, u, e.s_public, e.c_public, self._digest)
            if e.tag is None or not crypto.verify_mac(self._auth[v], e.tag, *fields):
                raise TamperedMessage(
                    f"the keys advertised for {v} are not authentic, or {v} was sent "
                    "another invitation"
                )
        if len(entries) + 1 < t:
            raise BelowThreshold(f"{len(entries) + 1} parties advertised keys, threshold is {t}")

        self._seed = os.urandom(crypto.HALF * 2)
        count = len(self._index)
        s_shares = crypto.split(self._s_private, t, count)
        b_shares = crypto.split(self._seed, t, count)
        shares: list[EncryptedShare] = []
        for v in sorted(entries):
            i = self._index[v] - 1
            payload = SharePayload(sender=u, recipient=v, s_share=s_shares[i], b_share=b_shares[i])
            key = self._share_key(entries[v])
            nonce, ciphertext = crypto.seal(
                key, crypto.frame(cid, u, v), payload.model_dump_json().encode()
            )
            shares.append(EncryptedShare(sender=u, recipient=v, nonce=nonce, ciphertext=ciphertext))
        i = self._index[u] - 1
        self._held[u] = SharePayload(
            sender=u, recipient=u, s_share=s_shares[i], b_share=b_shares[i]
        )
        self._peers = entries
        self.phase = "shared"
        return ShareBundle(
            computation_id=cid,
            sender=u,
            shares=shares,
            self_mask_commitment=crypto.commit(self._seed, cid, u),
        )

    def _share_key(self, peer: RosterEntry) -> bytes:
        shared = crypto.agree(self._c_private, peer.c_public)
        return crypto.kdf(
            shared, "share-encryption", self.computation_id, *crypto.pair(self.party_id, peer.party)
        )

    # --- round 2 --------------------------------------------------------------------

    def masked_input(self, inbox: ShareInbox) -> MaskedInput:
        """Decrypt the peers' shares, then send y_u = x_u + PRG(b_u) +- PRG(s_uv)
        for every peer v that shared keys."""
        self._expect("shared")
        self._addressed(inbox.computation_id, inbox.recipient)
        senders = [share.sender for share in inbox.shares]
        if len(set(senders)) != len(senders) or not set(senders) <= set(self._peers):
            raise ProtocolViolation("the inbox holds shares from unexpected or repeated senders")
        if any(share.recipient != self.party_id for share in inbox.shares):
            raise ProtocolViolation("the inbox holds shares addressed to another party")
        return self._guard(lambda: self._masked_input(inbox))

    def _masked_input(self, inbox: ShareInbox) -> MaskedInput:
        assert self._s_private is not None and self._seed is not None and self._input is not None
        u, cid, t = self.party_id, self.computation_id, self.invitation.threshold
        for share in inbox.shares:
            peer = self._peers[share.sender]
            plaintext = crypto.unseal(
                self._share_key(peer),
                share.nonce,
                crypto.frame(cid, share.sender, u),
                share.ciphertext,
            )
            try:
                payload = SharePayload.model_validate_json(plaintext)
            except ValidationError as exc:
                raise TamperedMessage(f"the share from {share.sender} is malformed") from exc
            if (payload.sender, payload.recipient) != (share.sender, u):
                raise TamperedMessage(f"the share from {share.sender} names other parties")
            self._held[share.sender] = payload
        if len(self._held) < t:
            raise BelowThreshold(f"{len(self._held)} parties shared keys, threshold is {t}")

        ring = self._ring
        y = ring.add(self._input, self_mask(ring, self._seed, cid, u))
        for v in self._held:
            if v != u:
                shared = crypto.agree(self._s_private, self._peers[v].s_public)
                y = add_pairwise(ring, y, pairwise_mask(ring, shared, cid, u, v), u, v)
        self._input = self._seed = self._s_private = (
            None  # all this party may later reveal is shares
        )
        self.phase = "masked"
        return MaskedInput(computation_id=cid, sender=u, vector=ring.to_wire(y))

    # --- round 3 --------------------------------------------------------------------

    def unmask(self, request: UnmaskRequest) -> UnmaskResponse:
        """Reveal the s-key share of each dropped peer and the self-mask share of each
        survivor. Refuses (and aborts) a request naming a peer in both sets, or a
        second request: either could give the server both shares of one peer."""
        if self.phase == "done":
            self.abort()
            raise UnsafeRequest("a second unmask request is refused; it could unmask a peer")
        self._expect("masked")
        self._addressed(request.computation_id, self.party_id)
        return self._guard(lambda: self._unmask(request))

    def _unmask(self, request: UnmaskRequest) -> UnmaskResponse:
        survivors, dropped = set(request.survivors), set(request.dropped)
        if both := sorted(survivors & dropped):
            raise UnsafeRequest(f"the request asks for both shares of {', '.join(both)}")
        if len(survivors) != len(request.survivors) or len(dropped) != len(request.dropped):
            raise UnsafeRequest("the request repeats a party")
        if survivors | dropped != set(self._held) or self.party_id not in survivors:
            raise UnsafeRequest("the request does not match the parties that shared keys")
        t = self.invitation.threshold
        if len(survivors) < t:
            raise BelowThreshold(f"{len(survivors)} parties sent masked input, threshold is {t}")
        response = UnmaskResponse(
            computation_id=self.computation_id,
            sender=self.party_id,
            s_shares={v: self._held[v].s_share for v in sorted(dropped)},
            b_shares={v: self._held[v].b_share for v in sorted(survivors)},
        )
        self._held = {}
        self.phase = "done"
        return response

    # --- plumbing ---------------------------------------------------------------

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
        self._held, self._peers, self._auth = {}, {}, {}
