"""The ring follows the computation (Params.fitting, stats.task_params): counts and
bounded sums travel in 64-bit elements, the 2**60 default in 128-bit ones, and
the smaller ring stays exact up to its edge because every input above the bound
and every party beyond the ring's room is refused before anything can wrap."""

from __future__ import annotations

from fractions import Fraction

import pytest
from pydantic import ValidationError

from edgefleet.fed.messages import RING_MARGIN, Invitation, Params, Task
from edgefleet.fed.ring import Ring
from edgefleet.fed.simulate import identities, invite, run
from edgefleet.fed.stats import MAX_ROWS, contribution, release, task_params


def task(op: str, **extra: object) -> Task:
    return Task(project="p", dataset="d", op=op, column="x", **extra)


@pytest.mark.parametrize("parties", [3, 100, 10_000])
def test_counting_tasks_travel_in_64_bit_elements_exactly(parties: int) -> None:
    for counting in (
        task("count"),
        task("histogram", bins=[0, 1, 2]),
        task("quantile", bins=[0, 1, 2], quantiles=[0.5]),
    ):
        params = task_params(counting, parties=parties)
        assert (params.ring_bits, params.frac_bits, params.bound) == (64, 0, float(MAX_ROWS))
        assert params.max_parties() >= parties * RING_MARGIN


def test_sums_keep_the_wide_ring_unless_bounded() -> None:
    assert task_params(task("sum"), parties=100).ring_bits == 128
    assert task_params(task("count", epsilon=1.0), parties=100).ring_bits == 128  # noise
    bounded = task_params(task("sum"), bound=1000.0, parties=100)
    assert (bounded.ring_bits, bounded.frac_bits) == (64, 40)
    assert task_params(task("sum")).ring_bits == 128  # no parties: the device-side default


def test_fitting_picks_the_smallest_ring_with_the_margin() -> None:
    bench = Params.fitting(10_000, 1024.0, 1000, frac_bits=24)
    assert bench.ring_bits == 64 and bench.max_parties() >= 1000 * RING_MARGIN
    # just too many parties for 64 bits: the next ring, never a tight one
    room = Params(length=1, ring_bits=64, frac_bits=24, bound=1024.0).max_parties()
    assert Params.fitting(1, 1024.0, room // RING_MARGIN, frac_bits=24).ring_bits == 64
    assert Params.fitting(1, 1024.0, room // RING_MARGIN + 1, frac_bits=24).ring_bits == 128
    assert Params.fitting(1, 2.0**60, 10, frac_bits=40).ring_bits == 128
    assert Params.fitting(1, 2.0**200, 10, frac_bits=40).ring_bits == 256
    with pytest.raises(ValueError):
        Params.fitting(1, 2.0**600, 10)
    with pytest.raises(ValueError):
        Params.fitting(1, float("inf"), 10)


def test_the_64_bit_ring_is_exact_at_its_edge_and_refuses_what_would_wrap() -> None:
    bound = 2.0**30
    params = Params.fitting(1, bound, 2**4, frac_bits=24)  # 2**54 per party: room for 511
    assert params.ring_bits == 64
    ring, most = Ring(params), params.max_parties()
    for sign in (1, -1):
        total = ring.zero()
        for _ in range(most):  # every party at the bound: the largest sum the ring holds
            ring.add_into(total, ring.encode([sign * bound]))
        assert ring.decode(total) == [Fraction(sign * most * 2**30)]
    with pytest.raises(ValueError, match="bound"):
        ring.encode([bound * (1 + 2**-40)])  # just above: refused, never wrapped
    keys = {f"p{i:05d}": bytes(32) for i in range(most + 1)}
    with pytest.raises(ValidationError, match="overflow"):
        Invitation(computation_id="c", parties=keys, threshold=most, params=params)


def test_a_count_over_the_64_bit_ring_equals_plaintext_with_a_dropout() -> None:
    names = [f"p{i}" for i in range(6)]
    histogram = task("histogram", bins=[0.0, 10.0, 20.0, 30.0])
    params = task_params(histogram, parties=len(names))
    keys = identities(names)
    invitation = invite("hist64", keys, 4, params).model_copy(update={"task": histogram})
    rows = {p: [(float((3 * i + 7 * j) % 31),) for j in range(50 + i)] for i, p in
            enumerate(names)}  # fmt: skip
    vectors = {p: contribution(histogram, ["x"], rows[p], 4) for p in names}
    outcome = run(invitation, keys, vectors, drop={"p2": "masked"})
    assert outcome.result is not None, outcome.error
    result = release(histogram, outcome.aggregator.result_exact())
    survivors = [x for p in names if p != "p2" for (x,) in rows[p]]
    assert result.n == len(survivors)
    expected = [sum(1 for x in survivors if lo <= x < hi) for lo, hi in ((0, 10), (10, 20))]
    expected.append(sum(1 for x in survivors if 20 <= x <= 30))
    assert result.counts == expected
    sent = outcome.sent_bytes["p0"]
    assert Ring(params).width == 8 and sent < 4 * 8 * 4 + 4000  # 8 bytes per element
