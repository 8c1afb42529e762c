"""Statistics from secure sums match the same statistic over the union of the data."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

import pytest

from edgefleet.fed.simulate import identities, invite, run
from edgefleet.fed.stats import Op, Statistic, finish, local_vector, params_for

NAMES = ["p1", "p2", "p3", "p4", "p5"]
BINS = [0.0, 1e5, 2.5e5, 5e5, 7.5e5, 1e6]


@pytest.fixture(scope="module")
def columns() -> dict[str, list[float]]:
    """Thousands of rows per device, values up to 1e6, different shapes per device."""
    rng = random.Random(7)
    return {
        "p1": [rng.uniform(0, 1e6) for _ in range(3000)],
        "p2": [rng.gauss(5e5, 1e5) for _ in range(2500)],
        "p3": [rng.expovariate(1e-5) for _ in range(4000)],
        "p4": [round(rng.uniform(-1e6, 1e6), 3) for _ in range(1000)] + [1e6, 0.0],
        "p5": [rng.lognormvariate(10, 1) for _ in range(2000)],
    }


def secure(
    op: Op, columns: dict[str, list[float]], bins: Sequence[float] | None = None
) -> Statistic:
    keys = identities(NAMES)
    invitation = invite(f"stat-{op}", keys, 3, params_for(op, bins))
    vectors = {name: local_vector(op, columns[name], bins) for name in NAMES}
    outcome = run(invitation, keys, vectors)
    assert outcome.result is not None, outcome.error
    return finish(op, outcome.aggregator.result_exact(), bins)


def close(got: float | None, want: float) -> bool:
    return got is not None and abs(got - want) <= 1e-9 * abs(want)


def union(columns: dict[str, list[float]]) -> list[float]:
    return [x for name in NAMES for x in columns[name]]


@pytest.mark.parametrize("op", ["count", "sum", "mean", "variance"])
def test_moments_match_the_union(op: Op, columns: dict[str, list[float]]) -> None:
    data = union(columns)
    want = {
        "count": float(len(data)),
        "sum": math.fsum(data),
        "mean": statistics.fmean(data),
        "variance": statistics.variance(data),  # sample variance, ddof=1
    }[op]
    result = secure(op, columns)
    assert result.n == len(data)
    assert close(result.value, want), (result, want)


def test_histogram_matches_the_union(columns: dict[str, list[float]]) -> None:
    data = union(columns)
    want = [0] * (len(BINS) - 1)
    for x in data:
        for i in range(len(want)):
            last = i == len(want) - 1
            if BINS[i] <= x < BINS[i + 1] or (last and x == BINS[-1]):
                want[i] += 1
    result = secure("histogram", columns, BINS)
    assert result.counts == want
    assert result.n == len(data)


def test_against_numpy(columns: dict[str, list[float]]) -> None:
    import numpy as np

    data = np.array(union(columns))
    assert close(secure("sum", columns).value, float(data.sum()))
    assert close(secure("mean", columns).value, float(data.mean()))
    variance = secure("variance", columns)
    assert close(variance.value, float(data.var(ddof=1)))
    counts, _ = np.histogram(data, bins=BINS)
    assert secure("histogram", columns, BINS).counts == counts.tolist()


def test_local_vectors_are_only_totals() -> None:
    assert local_vector("count", [1.0, 2.0]) == [2.0]
    assert local_vector("mean", [1.0, 2.0]) == [2.0, 3.0]
    assert local_vector("variance", [1.0, 2.0]) == [2.0, 3.0, 5.0]
    assert local_vector("histogram", [0.0, 0.5, 1.0, 2.0, -1.0], [0.0, 0.5, 1.0]) == [5.0, 1.0, 2.0]


def test_undefined_statistics_and_bad_input() -> None:
    assert finish("mean", [0.0, 0.0]).value is None
    assert finish("variance", [1.0, 3.0, 9.0]).value is None
    with pytest.raises(ValueError):
        local_vector("sum", [float("nan")])
    with pytest.raises(ValueError):
        local_vector("histogram", [1.0], [1.0, 1.0])
    with pytest.raises(ValueError):
        finish("variance", [1.0, 2.0])
