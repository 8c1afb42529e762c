"""The secure-aggregation rounds, end to end through the in-process relay."""

from __future__ import annotations

import ast
import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError

import edgefleet.fed
from edgefleet.fed import (
    Aggregator,
    BelowThreshold,
    Invitation,
    MaskedInput,
    Params,
    Party,
    ProtocolAborted,
    ProtocolViolation,
    Roster,
    ShareInbox,
    Survivors,
    TamperedMessage,
    UnmaskRequest,
    UnmaskResponse,
    UnsafeRequest,
    decode,
)
from edgefleet.fed.codec import decode_frame
from edgefleet.fed.messages import FedMessage
from edgefleet.fed.ring import Ring
from edgefleet.fed.simulate import Round, benchmark, identities, invite, run

NAMES = ["alpha", "bravo", "charlie", "delta", "echo"]
LENGTH = 6


@dataclass
class World:
    keys: dict[str, bytes]
    invitation: Invitation
    vectors: dict[str, list[float]]

    def total(self, parties: list[str]) -> list[float]:
        return [sum(self.vectors[p][i] for p in parties) for i in range(LENGTH)]


@pytest.fixture
def world() -> World:
    rng = random.Random(42)
    keys = identities(NAMES)
    vectors = {name: [rng.uniform(-1e6, 1e6) for _ in range(LENGTH)] for name in NAMES}
    return World(keys, invite("comp-1", keys, 3, Params(length=LENGTH)), vectors)


def assert_close(got: list[float] | None, want: list[float]) -> None:
    assert got is not None
    for a, b in zip(got, want, strict=True):
        assert abs(a - b) <= 1e-9 * max(1.0, abs(b))


def drive_to_unmask(
    world: World,
) -> tuple[dict[str, Party], Aggregator, dict[str, UnmaskRequest]]:
    """Rounds 0-3 by hand, every party present: the unmask request for each."""
    parties = {n: Party(world.invitation, n, world.keys[n], world.vectors[n]) for n in NAMES}
    aggregator = Aggregator(world.invitation)
    for party in parties.values():
        aggregator.handle(party.advertise())
    for name, roster in aggregator.rosters().items():
        aggregator.handle(reply(parties[name], roster))
    for name, inbox in aggregator.inboxes().items():
        aggregator.handle(reply(parties[name], inbox))
    survivors = aggregator.survivor_list()
    for name in survivors.survivors:
        aggregator.handle(reply(parties[name], survivors))
    return parties, aggregator, aggregator.unmask_requests()


def reply(party: Party, message: FedMessage) -> FedMessage:
    answer = party.handle(decode(message.model_dump_json()))
    assert answer is not None
    return answer


# --- correctness and dropouts -----------------------------------------------------


def test_five_parties_sum_to_the_plain_sum(world: World) -> None:
    outcome = run(world.invitation, world.keys, world.vectors)
    assert outcome.error is None
    assert_close(outcome.result, world.total(NAMES))
    assert outcome.aggregator.phase == "done"


def test_dropouts_before_and_after_the_masked_input(world: World) -> None:
    outcome = run(
        world.invitation, world.keys, world.vectors, drop={"bravo": "masked", "delta": "unmask"}
    )
    assert outcome.error is None
    included = [n for n in NAMES if n != "bravo"]  # delta sent its input, then vanished
    assert outcome.aggregator.survivors == sorted(included)
    assert outcome.aggregator.dropped == {"bravo": "masked", "delta": "unmask"}
    assert_close(outcome.result, world.total(included))


def test_dropout_before_sharing_keys(world: World) -> None:
    outcome = run(world.invitation, world.keys, world.vectors, drop={"echo": "shares"})
    assert_close(outcome.result, world.total(NAMES[:4]))


def test_below_threshold_aborts_and_releases_nothing(world: World) -> None:
    drop: dict[str, Round] = {"alpha": "masked", "bravo": "masked", "charlie": "masked"}
    outcome = run(world.invitation, world.keys, world.vectors, drop=drop)
    assert isinstance(outcome.error, BelowThreshold)
    assert outcome.result is None
    assert outcome.aggregator.phase == "aborted"
    with pytest.raises(ProtocolAborted):
        outcome.aggregator.result()


def test_too_few_unmask_responses_abort(world: World) -> None:
    drop: dict[str, Round] = {"alpha": "unmask", "bravo": "unmask", "charlie": "unmask"}
    outcome = run(world.invitation, world.keys, world.vectors, drop=drop)
    assert isinstance(outcome.error, BelowThreshold)
    assert outcome.result is None


# --- what the server sees ---------------------------------------------------------


def test_transcript_holds_no_input_value_or_encoding(world: World) -> None:
    outcome = run(world.invitation, world.keys, world.vectors, drop={"delta": "unmask"})
    assert outcome.result is not None and outcome.transcript
    text = b"\n".join(outcome.transcript).decode("latin-1")
    ring = Ring(world.invitation.params)
    encoded = {e for v in world.vectors.values() for e in ring.elements(ring.encode(v))}
    blobs = b""
    seen: set[int] = set()
    for frame in outcome.transcript:
        message = decode_frame(frame)
        if isinstance(message, MaskedInput):
            blobs += message.vector
            seen.update(ring.elements(ring.from_wire(message.vector)))
    assert blobs and not encoded & seen
    for value in encoded:
        assert str(value) not in text
        assert value.to_bytes(ring.width, "little") not in blobs
    for vector in world.vectors.values():
        for x in vector:
            assert repr(x) not in text


def test_tampered_ciphertext_is_rejected(world: World) -> None:
    def flip(party: str, message: FedMessage) -> FedMessage:
        if isinstance(message, ShareInbox) and message.recipient == "charlie":
            broken = bytearray(message.shares)
            broken[-1] ^= 1  # the last byte of the first record's GCM tag
            return message.model_copy(update={"shares": bytes(broken)})
        return message

    outcome = run(world.invitation, world.keys, world.vectors, tamper=flip)
    assert isinstance(outcome.error, TamperedMessage)
    assert outcome.result is None


def test_swapped_ephemeral_key_is_rejected(world: World) -> None:
    def swap(party: str, message: FedMessage) -> FedMessage:
        if isinstance(message, Roster) and message.recipient == "alpha":
            entries = [
                e.model_copy(update={"s_public": world.invitation.parties["echo"]})
                if e.party == "bravo"
                else e
                for e in message.entries
            ]
            return message.model_copy(update={"entries": entries})
        return message

    outcome = run(world.invitation, world.keys, world.vectors, tamper=swap)
    assert isinstance(outcome.error, TamperedMessage)


# --- the party's refusals ---------------------------------------------------------


def test_request_for_both_shares_of_a_peer_is_refused(world: World) -> None:
    parties, _, requests = drive_to_unmask(world)
    greedy = requests["alpha"].model_copy(update={"dropped": ["bravo"]})  # also a survivor
    with pytest.raises((UnsafeRequest, TamperedMessage)):
        parties["alpha"].unmask(greedy)
    assert parties["alpha"].phase == "aborted"
    with pytest.raises(ProtocolViolation):
        parties["alpha"].unmask(requests["alpha"])


def test_a_second_unmask_request_is_refused(world: World) -> None:
    parties, _, requests = drive_to_unmask(world)
    parties["alpha"].unmask(requests["alpha"])
    survivors = [n for n in NAMES if n != "bravo"]
    other = UnmaskRequest(
        computation_id="comp-1", recipient="alpha", survivors=survivors, dropped=["bravo"]
    )
    with pytest.raises(UnsafeRequest):
        parties["alpha"].unmask(other)


def test_party_refuses_a_survivor_list_below_threshold(world: World) -> None:
    parties = {n: Party(world.invitation, n, world.keys[n], world.vectors[n]) for n in NAMES}
    aggregator = Aggregator(world.invitation)
    for party in parties.values():
        aggregator.handle(party.advertise())
    for name, roster in aggregator.rosters().items():
        aggregator.handle(reply(parties[name], roster))
    for name, inbox in aggregator.inboxes().items():
        aggregator.handle(reply(parties[name], inbox))
    small = Survivors(
        computation_id="comp-1", survivors=["alpha", "bravo"], dropped=["charlie", "delta", "echo"]
    )
    with pytest.raises(BelowThreshold):
        parties["alpha"].consistency(small)


def test_abort_ends_a_party(world: World) -> None:
    parties, aggregator, requests = drive_to_unmask(world)
    assert parties["alpha"].handle(aggregator.abort("deadline")) is None
    assert parties["alpha"].phase == "aborted"
    with pytest.raises(ProtocolViolation):
        parties["alpha"].unmask(requests["alpha"])
    with pytest.raises(ProtocolAborted):
        aggregator.result()


def test_party_refuses_out_of_order_and_out_of_bound_input(world: World) -> None:
    party = Party(world.invitation, "alpha", world.keys["alpha"], world.vectors["alpha"])
    with pytest.raises(ProtocolViolation):
        party.masked_input(ShareInbox(computation_id="comp-1", recipient="alpha", shares=b""))
    too_big = [2.0**61] + [0.0] * (LENGTH - 1)
    with pytest.raises(ProtocolViolation):
        Party(world.invitation, "alpha", world.keys["alpha"], too_big)
    with pytest.raises(ProtocolViolation):
        Party(world.invitation, "alpha", world.keys["bravo"], world.vectors["alpha"])


# --- the aggregator's checks --------------------------------------------------------


def test_aggregator_rejects_duplicates_strangers_and_wrong_rounds(world: World) -> None:
    aggregator = Aggregator(world.invitation)
    advert = Party(
        world.invitation, "alpha", world.keys["alpha"], world.vectors["alpha"]
    ).advertise()
    aggregator.handle(advert)
    with pytest.raises(ProtocolViolation):
        aggregator.handle(advert)
    with pytest.raises(ProtocolViolation):
        aggregator.handle(advert.model_copy(update={"computation_id": "other"}))
    with pytest.raises(ProtocolViolation):
        aggregator.inboxes()
    assert aggregator.waiting_for() == set(NAMES) - {"alpha"}


def test_one_bad_share_is_skipped_when_a_spare_holder_exists(world: World) -> None:
    parties, aggregator, requests = drive_to_unmask(world)
    for name, request in requests.items():
        response = parties[name].unmask(request)
        if name == "alpha":
            bad = dict(response.b_shares, charlie=bytes(33))
            response = response.model_copy(update={"b_shares": bad})
        aggregator.handle(response)
    assert_close(aggregator.result(), world.total(NAMES))


def test_bad_share_without_a_spare_aborts(world: World) -> None:
    parties, aggregator, requests = drive_to_unmask(world)
    for name in ["alpha", "bravo", "charlie"]:
        response: UnmaskResponse = parties[name].unmask(requests[name])
        if name == "alpha":
            bad = dict(response.b_shares, charlie=bytes(33))
            response = response.model_copy(update={"b_shares": bad})
        aggregator.handle(response)
    with pytest.raises(TamperedMessage):
        aggregator.result()


# --- messages ------------------------------------------------------------------------


def test_messages_are_strict() -> None:
    advert = {
        "type": "fed.advertise",
        "computation_id": "c",
        "sender": "alpha",
        "s_public": "A" * 43 + "=",
        "c_public": "A" * 43 + "=",
        "tags": {},
    }
    decode(json.dumps(advert))
    for broken in (
        {**advert, "extra": 1},
        {**advert, "s_public": "A" * 42 + "=="},  # 31 bytes
        {**advert, "c_public": "not base64!"},
        {**advert, "type": "fed.pickle"},
        {**advert, "sender": "bad id with spaces"},
    ):
        with pytest.raises(ValidationError):
            decode(json.dumps(broken))


def test_invitation_needs_a_majority_threshold_and_room_in_the_ring() -> None:
    keys = {n: bytes(32) for n in NAMES}
    with pytest.raises(ValidationError):
        Invitation(computation_id="c", parties=keys, threshold=2, params=Params(length=1))
    tight = Params(length=1, ring_bits=64, frac_bits=40, bound=2.0**21)
    assert tight.max_parties() == 3
    with pytest.raises(ValidationError):
        Invitation(computation_id="c", parties=keys, threshold=3, params=tight)


def test_the_package_imports_neither_server_nor_agent() -> None:
    package = Path(edgefleet.fed.__file__).parent
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("edgefleet.server", "edgefleet.agent")), module


def test_benchmark_helper_runs_small() -> None:
    result = benchmark(parties=4, length=8)
    assert result.max_abs_error < 1e-6
    assert result.bytes_per_party > result.plain_bytes_per_party  # keys dominate tiny vectors
