"""SecAgg+ end to end in-process: the neighbourhood graph on, exact sums against
plaintext with and without dropouts, and the per-neighbourhood refusals."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from edgefleet.fed.errors import BelowThreshold
from edgefleet.fed.messages import Params
from edgefleet.fed.simulate import Round, identities, invite, run

PARAMS = Params(length=16, ring_bits=64, frac_bits=24, bound=1024.0)


def world(n: int, seed: int = 7) -> tuple[dict[str, bytes], dict[str, list[float]]]:
    rng = random.Random(seed)
    names = [f"dev-{i:03d}" for i in range(n)]
    vectors = {name: [rng.uniform(-1e3, 1e3) for _ in range(PARAMS.length)] for name in names}
    return identities(names), vectors


def exact(vectors: dict[str, list[float]], parties: list[str]) -> list[Fraction]:
    """The plaintext sum of the fixed-point encodings: what the protocol must return."""
    return (
        [
            sum((Fraction(x) * 2**24).__round__() for x in column) / Fraction(2**24)
            for column in zip(*(vectors[p] for p in parties), strict=True)
        ]
        if parties
        else []
    )


@pytest.mark.parametrize("n", [5, 60])
def test_exact_sum_without_dropouts(n: int) -> None:
    keys, vectors = world(n)
    invitation = invite("c-plus", keys, n // 2 + 1, PARAMS)
    assert invitation.shape().complete == (n <= 20)
    outcome = run(invitation, keys, vectors, record=False)
    assert outcome.error is None
    assert outcome.aggregator.result_exact() == exact(vectors, sorted(vectors))


@pytest.mark.parametrize("n", [8, 60, 200])
def test_exact_sum_with_ten_percent_dropouts_in_every_round(n: int) -> None:
    keys, vectors = world(n, seed=n)
    invitation = invite("c-drop", keys, n // 2 + 1, PARAMS)
    names = sorted(vectors)
    rounds: list[Round] = ["shares", "masked", "consistency", "unmask"]
    silent = random.Random(1).sample(names, max(2, n // 10))
    drop = {p: rounds[i % 4] for i, p in enumerate(silent)}
    outcome = run(invitation, keys, vectors, drop=drop, record=False)
    assert outcome.error is None, outcome.error
    # in the sum: everyone who sent a masked input, including those who left later
    included = [p for p in names if drop.get(p) not in ("shares", "masked")]
    assert outcome.aggregator.survivors == included
    assert outcome.aggregator.result_exact() == exact(vectors, included)


def test_each_party_works_with_its_neighbours_only() -> None:
    keys, vectors = world(60)
    invitation = invite("c-near", keys, 31, PARAMS)
    shape = invitation.shape()
    outcome = run(invitation, keys, vectors)
    assert outcome.error is None
    for name, party in outcome.parties.items():
        assert len(party.neighbours) == shape.neighbours < 59
        assert name not in party.neighbours


def test_too_many_dropped_neighbours_is_a_clear_refusal() -> None:
    keys, vectors = world(60)
    invitation = invite("c-lonely", keys, 31, PARAMS)
    victim = "dev-000"
    near = sorted(invitation.neighbourhoods()[victim])
    lost = len(near) + 1 - invitation.shape().threshold + 1  # one more than it can spare
    drop: dict[str, Round] = dict.fromkeys(near[:lost], "masked")
    outcome = run(invitation, keys, vectors, drop=drop)
    assert isinstance(outcome.error, BelowThreshold)
    assert "too many of its neighbours dropped" in outcome.error.reason
    assert outcome.result is None
