"""Messages of one secure-aggregation computation.

Every message is a frozen pydantic model with a literal ``type`` (all start with
``fed.``) and ``extra="forbid"``; binary fields travel as strict base64 text, and
keys and shares have fixed sizes checked at the boundary. :data:`FedMessage` is
the discriminated union a transport decodes with :func:`decode`. Nothing a peer
sends is unpickled or evaluated: the only parser is pydantic's JSON validator.

Direction, round by round (``P`` = a device's :class:`~edgefleet.fed.party.Party`,
``A`` = the server's :class:`~edgefleet.fed.aggregator.Aggregator`)::

    A -> P  Invitation       who takes part (long-term keys), threshold, Params
    P -> A  AdvertiseKeys    round 0: ephemeral s/c public keys + HMAC tag per peer
    A -> P  Roster           everyone's advertisement (tags addressed to the recipient)
    P -> A  ShareBundle      round 1: one sealed share record per neighbour + commitment
    A -> P  ShareInbox       the share records addressed to the recipient
    P -> A  MaskedInput      round 2: y_u as ring elements
    A -> P  Survivors        round 3: who survived (U3), who dropped
    P -> A  ConsistencyTags  round 3: a MAC over (U3, dropped) for each neighbour in U3
    A -> P  UnmaskRequest    round 4: the same lists + the neighbours' tags for the recipient
    P -> A  UnmaskResponse   s-key shares of dropped peers, self-mask shares of survivors
    either  Abort            the computation is over, with a reason

Large parts (share records, masked vectors) are raw bytes: :mod:`.codec` packs
them and frames whole messages in binary; the JSON form (base64) remains for the
agent connection's text frames.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import math
import string
from collections.abc import Mapping
from fractions import Fraction
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
    model_validator,
)

from edgefleet.fed.analytics.query import (
    MAX_COLUMNS,
    MAX_CONDITIONS,
    MAX_GROUPS,
    MAX_QUANTILES,
    ColumnName,
    Condition,
    Scalar,
)
from edgefleet.fed.graph import Shape, choose, neighbourhoods
from edgefleet.fed.ops import Op as Op  # re-exported: the protocol's operations

KEY_BYTES = 32  # X25519 public keys, self-mask seeds
SHARE_BYTES = 33  # one element of GF(2**256 + 297), big-endian (see .shamir)
TAG_BYTES = 32  # HMAC-SHA256
NONCE_BYTES = 12  # AES-GCM
MAX_PARTIES = 10_000
SHARE_RECORD = 4 + 12 + 2 * 33 + 16  # peer index, nonce, two sealed shares + GCM tag
RING_MARGIN = 16  # Params.fitting: a ring holds 16x the parties it is picked for


def _to_b64(value: bytes) -> str:
    return binascii.b2a_base64(value, newline=False).decode("ascii")


def _b64(at_least: int = 0, at_most: int | None = None) -> PlainValidator:
    """Strict base64 (bytes pass as they are) whose decoded size is in bounds, in one
    Python call per field: a roster carries ~100 keys and tags, and a second
    validator per field was a fifth of a party's parsing."""

    upper = at_most if at_most is not None else 1 << 62

    def check(value: object) -> bytes:
        # one call per field: ~260,000 fields per 1,000-party computation, so the
        # usual case (text from JSON) is tested first and the size taken once
        if isinstance(value, str):
            try:  # strict: standard alphabet, padding required, nothing else (one C call)
                raw = binascii.a2b_base64(value, strict_mode=True)
            except (ValueError, binascii.Error) as exc:
                raise ValueError("invalid base64") from exc
        elif isinstance(value, bytes):
            raw = value
        else:
            raise ValueError("expected base64 text")
        if not at_least <= len(raw) <= upper:
            if at_least == at_most:
                raise ValueError(f"expected {at_least} bytes, got {len(raw)}")
            raise ValueError(f"at most {at_most} bytes, got {len(raw)}")
        return raw

    return PlainValidator(check)


_AS_TEXT = PlainSerializer(_to_b64, return_type=str, when_used="json")
_SCHEMA = WithJsonSchema({"type": "string", "contentEncoding": "base64"})
B64 = Annotated[bytes, _b64(), _AS_TEXT, _SCHEMA]
Key = Annotated[bytes, _b64(KEY_BYTES, KEY_BYTES), _AS_TEXT, _SCHEMA]
Share = Annotated[bytes, _b64(SHARE_BYTES, SHARE_BYTES), _AS_TEXT, _SCHEMA]
Tag = Annotated[bytes, _b64(TAG_BYTES, TAG_BYTES), _AS_TEXT, _SCHEMA]
Nonce = Annotated[bytes, _b64(NONCE_BYTES, NONCE_BYTES), _AS_TEXT, _SCHEMA]
ShareRecords = Annotated[bytes, _b64(0, MAX_PARTIES * SHARE_RECORD), _AS_TEXT, _SCHEMA]
PartyId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")
]
_NAME_CHARS = string.ascii_letters + string.digits + "._:@-"
_LIST_BYTES = (_NAME_CHARS + ",").encode()  # what a comma-separated list may hold


def _party_list(value: object) -> list[str]:
    """A list of party ids; on the wire one comma-separated string, checked by one
    regular expression (a 1,000-name list as 1,000 validated strings cost a party
    a millisecond per message)."""
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ValueError("expected party ids")
        text = ",".join(value)
    elif isinstance(value, str):
        text = value
    else:
        raise ValueError("expected comma-separated party ids")
    if not text and not value:
        return []
    # ASCII, then no byte outside the alphabet: bytes.translate deletes in one C
    # pass (str.translate looks each character up: 3x the time on 1,000 names)
    if (
        len(text) > MAX_PARTIES * 129
        or not text.isascii()
        or text.encode("ascii").translate(None, _LIST_BYTES)
    ):
        raise ValueError("expected comma-separated party ids (A-Z a-z 0-9 . _ : @ -)")
    names = text.split(",")  # C-speed checks: a 1,000-name list costs ~50 us
    if len(names) > MAX_PARTIES or (isinstance(value, list) and len(names) != len(value)):
        raise ValueError(f"at most {MAX_PARTIES} party ids, none holding a comma")
    if "" in names or max(map(len, names)) > 128:
        raise ValueError("a party id is empty or longer than 128 characters")
    return names


PartyList = Annotated[
    list[str],
    PlainValidator(_party_list),
    PlainSerializer(",".join, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "description": "comma-separated party ids"}),
]
ComputationId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Params(Strict):
    """How vectors are encoded. Every element x is sent as round(x * 2**frac_bits)
    in the ring Z_{2**ring_bits}; the default (128-bit ring, scale 2**40, |x| <= 2**60)
    keeps 12 decimal digits after the point and leaves room for 2**26 parties."""

    length: int = Field(ge=1, le=10_000_000, description="elements per vector")
    ring_bits: int = Field(128, ge=64, le=512, multiple_of=64)
    frac_bits: int = Field(40, ge=0)
    bound: float = Field(2.0**60, gt=0, description="largest |x| a party may submit")

    @model_validator(mode="after")
    def _fits(self) -> Params:
        if not math.isfinite(self.bound):
            raise ValueError("bound must be finite")
        if self.max_parties() < 1:
            raise ValueError("bound * 2**frac_bits leaves no room in the ring")
        return self

    def max_parties(self) -> int:
        """How many bounded inputs sum without wrapping around the signed ring."""
        per_party = Fraction(self.bound) * 2**self.frac_bits + Fraction(1, 2)  # + rounding
        return int((2 ** (self.ring_bits - 1) - 1) // per_party)

    @classmethod
    def fitting(
        cls, length: int, bound: float, parties: int, frac_bits: int = 40, margin: int = RING_MARGIN
    ) -> Params:
        """The smallest ring that holds the sum of ``margin`` x ``parties`` inputs of
        |x| <= ``bound`` at scale 2**``frac_bits``: the bytes on the wire follow the
        computation (64-bit elements for counts or bounded sums, 128-bit for the
        default 2**60 bound) instead of always paying for the widest case. The
        margin leaves room for the invitation's own check (n <= max_parties) and
        for parties added later; a party still refuses any input above ``bound``,
        so the smaller ring can never wrap. ValueError if no ring up to 512 bits fits."""
        if parties < 1 or margin < 1:
            raise ValueError("parties and margin must be positive")
        if not (math.isfinite(bound) and bound > 0 and frac_bits >= 0):
            raise ValueError("bound must be finite and positive, frac_bits >= 0")
        per_party = Fraction(bound) * 2**frac_bits + Fraction(1, 2)  # as in max_parties
        for bits in range(64, 513, 64):
            if (2 ** (bits - 1) - 1) // per_party >= parties * margin:
                return cls(length=length, ring_bits=bits, frac_bits=frac_bits, bound=bound)
        raise ValueError(f"no ring up to 512 bits holds {parties} parties at bound {bound!r}")


class Message(Strict):
    computation_id: ComputationId


class Task(Strict):
    """What each party computes its input from: the statistic over one column of a
    dataset its device holds, on behalf of a project. Checked by every device
    against its owner's policy; bound into round 0 with the rest of the invitation."""

    project: str = Field(min_length=1, max_length=128, description="project name")
    project_id: str = Field("", max_length=64)
    dataset: str = Field(min_length=1, max_length=128)
    op: Op
    column: str = Field(min_length=1, max_length=256)
    bins: list[float] | None = Field(None, max_length=10_001, description="histogram edges")
    requested_by: str = Field("", max_length=64)
    # Beyond one column (edgefleet.fed.analytics): all optional, checked by layout.check.
    columns: list[ColumnName] = Field(
        default_factory=list, max_length=MAX_COLUMNS, description="more columns; ols: the X"
    )
    where: list[Condition] = Field(default_factory=list, max_length=MAX_CONDITIONS)
    group_by: ColumnName | None = None
    groups: list[Scalar] = Field(default_factory=list, max_length=MAX_GROUPS)
    quantiles: list[float] = Field(default_factory=list, max_length=MAX_QUANTILES)
    epsilon: float | None = Field(None, gt=0, le=10, description="differential privacy")
    bounds: dict[ColumnName, tuple[float, float]] = Field(
        default_factory=dict, max_length=MAX_COLUMNS + 1, description="clip to [lo, hi] (DP)"
    )
    min_group_parties: int = Field(0, ge=0, le=MAX_PARTIES, description="suppress below")


class Invitation(Message):
    """server -> device: the computation, its parties' long-term X25519 public keys
    (from enrollment), the threshold t, the encoding and (optionally) the task."""

    type: Literal["fed.invite"] = "fed.invite"
    parties: dict[PartyId, Key] = Field(min_length=2, max_length=MAX_PARTIES)
    threshold: int = Field(ge=2)
    params: Params
    task: Task | None = None
    dropout: float = Field(
        0.1, ge=0.0, le=0.3, description="dropout rate the neighbourhood graph is sized for"
    )
    corruption: float = Field(
        0.05, ge=0.0, le=0.2, description="fraction of parties that may collude with the server"
    )
    _digest: bytes | None = PrivateAttr(None)
    _order: tuple[str, ...] | None = PrivateAttr(None)
    _indices: dict[str, int] | None = PrivateAttr(None)
    _graph: dict[str, frozenset[str]] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _sane(self) -> Invitation:
        n = len(self.parties)
        if not n // 2 < self.threshold <= n:
            raise ValueError(f"threshold must be a majority of the {n} parties: {n // 2 + 1}..{n}")
        if n > self.params.max_parties():
            raise ValueError(
                f"{n} parties could overflow the ring; at most {self.params.max_parties()}"
            )
        return self

    def order(self) -> list[str]:
        """Parties in the canonical order: Shamir index = position + 1, mask signs."""
        if self._order is None:  # frozen: sorted once per object
            self._order = tuple(sorted(self.parties))
        return list(self._order)

    def indices(self) -> Mapping[str, int]:
        """Each party's Shamir index (position in :meth:`order` + 1); do not mutate."""
        if self._indices is None:
            self._indices = {party: i + 1 for i, party in enumerate(self.order())}
        return self._indices

    def digest(self) -> bytes:
        """SHA-256 of the invitation in canonical JSON (keys sorted). Every party puts
        it under its round-0 tags, so two parties holding different invitations (other
        peers, threshold, encoding or task) refuse each other's keys."""
        if self._digest is None:  # frozen: computed once per object (1 ms at 1,000 parties)
            dumped = self.model_dump(mode="json")
            canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
            self._digest = hashlib.sha256(canonical.encode()).digest()
        return self._digest

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy never inherits the cached digest: ``update`` may change what it covers."""
        copy = super().model_copy(update=update, deep=deep)
        copy._digest = copy._order = copy._indices = copy._graph = None
        return copy

    def shape(self) -> Shape:
        """k neighbours and threshold t among k + 1 holders (:mod:`.graph`)."""
        return choose(len(self.parties), self.threshold, self.dropout, self.corruption)

    def neighbourhoods(self) -> dict[str, frozenset[str]]:
        """N(u) for every party, derived from the invitation alone; do not mutate.
        Kept on the (frozen) object: each party and the server ask for it, and the
        graph module's cache is keyed by the whole party tuple (hashing 1,000 names
        and copying the order cost ~25 us per call)."""
        if self._graph is None:
            self._graph = neighbourhoods(tuple(self.order()), self.digest(), self.shape())
        return self._graph


class AdvertiseKeys(Message):
    """device -> server, round 0: ephemeral public keys; ``tags[v]`` is
    HMAC(ECDH(long-term u, long-term v), keys) so that v can check them."""

    type: Literal["fed.advertise"] = "fed.advertise"
    sender: PartyId
    s_public: Key
    c_public: Key
    tags: dict[PartyId, Tag] = Field(max_length=MAX_PARTIES)


class RosterEntry(Strict):
    party: PartyId
    s_public: Key
    c_public: Key
    tag: Tag | None = Field(
        None, description="the party's tag for the recipient; none on its own entry"
    )


class Roster(Message):
    """server -> device: every advertisement that arrived in round 0."""

    type: Literal["fed.roster"] = "fed.roster"
    recipient: PartyId
    threshold: int
    entries: list[RosterEntry] = Field(max_length=MAX_PARTIES)


class ShareBundle(Message):
    """device -> server, round 1: one sealed record per neighbour that advertised
    (:func:`edgefleet.fed.codec.pack_shares`: recipient index, AES-GCM nonce and
    ciphertext of its s-key and self-mask seed shares), and a SHA-256 commitment
    to the self-mask seed b_u (checked after reconstruction)."""

    type: Literal["fed.shares"] = "fed.shares"
    sender: PartyId
    shares: ShareRecords
    self_mask_commitment: Key


class ShareInbox(Message):
    """server -> device: the records addressed to the recipient, the index of each
    record now naming its sender."""

    type: Literal["fed.inbox"] = "fed.inbox"
    recipient: PartyId
    shares: ShareRecords


class MaskedInput(Message):
    """device -> server, round 2: y_u, ``length`` ring elements of ``ring_bits/8``
    bytes each, little-endian, concatenated."""

    type: Literal["fed.masked"] = "fed.masked"
    sender: PartyId
    vector: B64


class Survivors(Message):
    """server -> surviving devices, round 3: the lists each of them will MAC."""

    type: Literal["fed.survivors"] = "fed.survivors"
    survivors: PartyList = Field(description="U3: sent a masked input")
    dropped: PartyList = Field(description="shared keys, sent no input")


class ConsistencyTags(Message):
    """device -> server, round 3: ``tags[v]`` = HMAC(long-term pair key u-v, U3 and
    dropped) for each neighbour v in U3 (Bonawitz's round-4 consistency check)."""

    type: Literal["fed.consistency"] = "fed.consistency"
    sender: PartyId
    tags: dict[PartyId, Tag] = Field(max_length=MAX_PARTIES)


class UnmaskRequest(Message):
    """server -> devices that sent their tags, round 4: the same lists, and the
    tags the recipient's neighbours addressed to it."""

    type: Literal["fed.unmask_request"] = "fed.unmask_request"
    recipient: PartyId = Field(description="the party this copy (and its tags) is for")
    survivors: PartyList = Field(description="U3: sent a masked input")
    dropped: PartyList = Field(description="shared keys, sent no input")
    tags: dict[PartyId, Tag] = Field(
        default_factory=dict, max_length=MAX_PARTIES, description="sender -> its tag"
    )


class UnmaskResponse(Message):
    """device -> server, round 3: shares held by the sender. Never both kinds for one peer."""

    type: Literal["fed.unmask_response"] = "fed.unmask_response"
    sender: PartyId
    s_shares: dict[PartyId, Share] = Field(max_length=MAX_PARTIES, description="of dropped peers")
    b_shares: dict[PartyId, Share] = Field(max_length=MAX_PARTIES, description="of survivors")


class Abort(Message):
    """either direction: the computation is over; nothing will be released."""

    type: Literal["fed.abort"] = "fed.abort"
    reason: str = Field(max_length=1000)


FedMessage = Annotated[
    Invitation
    | AdvertiseKeys
    | Roster
    | ShareBundle
    | ShareInbox
    | MaskedInput
    | Survivors
    | ConsistencyTags
    | UnmaskRequest
    | UnmaskResponse
    | Abort,
    Field(discriminator="type"),
]

_ADAPTER: TypeAdapter[FedMessage] = TypeAdapter(FedMessage)


def decode(data: str | bytes) -> FedMessage:
    """Parse one JSON message; raises pydantic's ``ValidationError`` on anything else."""
    return _ADAPTER.validate_json(data)


def encode(message: FedMessage) -> str:
    return message.model_dump_json()
