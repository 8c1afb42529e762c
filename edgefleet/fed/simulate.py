"""An in-process relay: one computation with every party in this process, for
tests and benchmarks. The agent connection carries exactly these messages in
production; here each one is serialized to JSON and parsed back, so what the
parties and the aggregator see is what a transport would deliver.

::

    Party.advertise ----> Aggregator.on_advertise    .rosters()        ----> Party.share_keys
    Party.share_keys ---> Aggregator.on_shares       .inboxes()        ----> Party.masked_input
    Party.masked_input -> Aggregator.on_masked       .unmask_request() ----> Party.unmask
    Party.unmask -------> Aggregator.on_unmask       .result()

Importing this module has no side effects; :func:`benchmark` runs only when called.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, TypeVar

from edgefleet.fed import crypto
from edgefleet.fed.aggregator import Aggregator
from edgefleet.fed.errors import ProtocolAborted
from edgefleet.fed.messages import (
    FedMessage,
    Invitation,
    Params,
    Roster,
    ShareInbox,
    UnmaskRequest,
    decode,
)
from edgefleet.fed.party import Party

Round = Literal["advertise", "shares", "masked", "unmask"]
M = TypeVar("M", bound=FedMessage)


@dataclass
class Run:
    result: list[float] | None
    error: ProtocolAborted | None
    aggregator: Aggregator
    transcript: list[str] = field(default_factory=list)  # every message the aggregator handled
    sent_bytes: dict[str, int] = field(default_factory=dict)  # JSON bytes each party sent
    party_seconds: dict[str, float] = field(default_factory=dict)
    aggregator_seconds: float = 0.0


def identities(names: Sequence[str]) -> dict[str, bytes]:
    """Fresh long-term X25519 private keys, as enrollment would create them."""
    return {name: crypto.new_private_key() for name in names}


def invite(
    computation_id: str, keys: Mapping[str, bytes], threshold: int, params: Params
) -> Invitation:
    public = {name: crypto.public_key(private) for name, private in keys.items()}
    return Invitation(
        computation_id=computation_id, parties=public, threshold=threshold, params=params
    )


def run(
    invitation: Invitation,
    keys: Mapping[str, bytes],
    vectors: Mapping[str, Sequence[float]],
    *,
    drop: Mapping[str, Round] | None = None,
    tamper: Callable[[FedMessage], FedMessage] | None = None,
    record: bool = True,
) -> Run:
    """Run the four rounds. ``drop[p] = r``: party p goes silent from round r on.
    ``tamper`` sees (and may replace) every message the relay carries to a party."""
    drop = drop or {}
    aggregator = Aggregator(invitation)
    out = Run(result=None, error=None, aggregator=aggregator)
    parties = {p: Party(invitation, p, keys[p], vectors[p]) for p in invitation.parties}

    def relay(message: M) -> M:
        text = message.model_dump_json()
        if record:
            out.transcript.append(text)
        carried = decode(text)
        assert isinstance(carried, type(message))
        return carried

    def to_party(message: M) -> M:
        carried = relay(message)
        if tamper is not None:
            changed = tamper(carried)
            assert isinstance(changed, type(message))
            return changed
        return carried

    def from_party(party: str, step: Callable[[], FedMessage]) -> None:
        started = time.perf_counter()
        message = step()
        out.party_seconds[party] = out.party_seconds.get(party, 0.0) + time.perf_counter() - started
        out.sent_bytes[party] = out.sent_bytes.get(party, 0) + len(message.model_dump_json())
        on_server(lambda: aggregator.handle(relay(message)))

    def on_server(step: Callable[[], None]) -> None:
        started = time.perf_counter()
        step()
        out.aggregator_seconds += time.perf_counter() - started

    def answering(party: str, round_: Round) -> bool:
        order: list[Round] = ["advertise", "shares", "masked", "unmask"]
        return party not in drop or order.index(round_) < order.index(drop[party])

    try:
        for p, party in parties.items():
            if answering(p, "advertise"):
                from_party(p, party.advertise)
        rosters: dict[str, Roster] = {}
        on_server(lambda: rosters.update(aggregator.rosters()))
        for p, roster in rosters.items():
            if answering(p, "shares"):
                from_party(p, partial(parties[p].share_keys, to_party(roster)))
        inboxes: dict[str, ShareInbox] = {}
        on_server(lambda: inboxes.update(aggregator.inboxes()))
        for p, inbox in inboxes.items():
            if answering(p, "masked"):
                from_party(p, partial(parties[p].masked_input, to_party(inbox)))
        requests: list[UnmaskRequest] = []
        on_server(lambda: requests.append(aggregator.unmask_request()))
        for p in requests[0].survivors:
            if answering(p, "unmask"):
                from_party(p, partial(parties[p].unmask, to_party(requests[0])))
        result: list[float] = []
        on_server(lambda: result.extend(aggregator.result()))
        out.result = result
    except ProtocolAborted as exc:
        out.error = exc
    return out


@dataclass
class Benchmark:
    parties: int
    length: int
    secure_seconds: float  # the whole simulated protocol, every party in this one process
    party_seconds: float  # mean time one device spends in its four steps
    aggregator_seconds: float  # the server's share (mostly Shamir reconstruction)
    plain_seconds: float  # summing the same vectors in the clear
    bytes_per_party: float  # JSON bytes a party sends over all rounds
    plain_bytes_per_party: int  # the vector as raw float64
    max_abs_error: float  # against the plain sum


def benchmark(parties: int = 100, length: int = 10_000, seed: int = 0) -> Benchmark:
    """Secure sum of ``parties`` random vectors of ``length`` floats (threshold: a
    bare majority) against the plain sum."""
    rng = random.Random(seed)
    names = [f"device-{i:04d}" for i in range(parties)]
    vectors = {name: [rng.uniform(-1e3, 1e3) for _ in range(length)] for name in names}
    keys = identities(names)
    invitation = invite("bench", keys, parties // 2 + 1, Params(length=length))

    started = time.perf_counter()
    outcome = run(invitation, keys, vectors, record=False)
    secure = time.perf_counter() - started
    if outcome.result is None:
        raise RuntimeError(f"benchmark aborted: {outcome.error}")

    started = time.perf_counter()
    plain = [sum(column) for column in zip(*vectors.values(), strict=True)]
    plain_seconds = time.perf_counter() - started

    return Benchmark(
        parties=parties,
        length=length,
        secure_seconds=secure,
        party_seconds=sum(outcome.party_seconds.values()) / parties,
        aggregator_seconds=outcome.aggregator_seconds,
        plain_seconds=plain_seconds,
        bytes_per_party=sum(outcome.sent_bytes.values()) / parties,
        plain_bytes_per_party=8 * length,
        max_abs_error=max(abs(a - b) for a, b in zip(outcome.result, plain, strict=True)),
    )
