"""Every analytics operation through the real protocol (in-process relay) equals
the same statistic computed in plaintext over the union of the survivors' rows,
with and without a device dropping out before its masked input."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from edgefleet.fed.analytics.decode import Result
from edgefleet.fed.messages import Invitation, Task
from edgefleet.fed.simulate import identities, run
from edgefleet.fed.stats import contribution, release, task_params

NAMES = ["p1", "p2", "p3", "p4", "p5"]
COLUMNS = ["a", "b", "y", "g", "flag"]
Row = tuple[object, ...]


@pytest.fixture(scope="module")
def data() -> dict[str, list[Row]]:
    """Rows per device: a, b numeric (some missing), y linear in them plus noise,
    g a category (text), flag 0/1 as CSV-style text."""
    rng = random.Random(11)
    out: dict[str, list[Row]] = {}
    for i, name in enumerate(NAMES):
        rows: list[Row] = []
        for _ in range(300 + 50 * i):
            a = rng.uniform(-100, 100)
            b = rng.gauss(10 * i, 5)
            y = 2.5 * a - 3.0 * b + 7 + rng.gauss(0, 1)
            g = rng.choice(["north", "south", "east"] if i != 2 else ["west"])
            rows.append(
                (
                    None if rng.random() < 0.05 else f"{a}",
                    b,
                    y,
                    g,
                    str(rng.randint(0, 1)),
                )
            )
        out[name] = rows
    return out


def secure(task: Task, data: Mapping[str, list[Row]], drop: str | None) -> Result:
    keys = identities(NAMES)
    from edgefleet.fed import crypto

    invitation = Invitation(
        computation_id="analytics",
        parties={p: crypto.public_key(k) for p, k in keys.items()},
        threshold=3,
        params=task_params(task, parties=len(NAMES)),  # the ring the product picks
        task=task,
    )
    vectors = {p: contribution(task, COLUMNS, data[p], 3) for p in NAMES}
    outcome = run(invitation, keys, vectors, drop={drop: "masked"} if drop else None)
    assert outcome.result is not None, outcome.error
    return release(task, outcome.aggregator.result_exact())


def union(data: Mapping[str, list[Row]], drop: str | None) -> list[dict[str, Any]]:
    return [dict(zip(COLUMNS, r, strict=True)) for p in NAMES if p != drop for r in data[p]]


def num(rows: list[dict[str, Any]], column: str) -> list[float]:
    return [float(r[column]) for r in rows if r[column] is not None]


def close(got: float | None, want: float, rel: float = 1e-9) -> bool:
    return got is not None and math.isclose(got, want, rel_tol=rel, abs_tol=1e-9)


def task(**fields: Any) -> Task:
    return Task(project="p", dataset="d", **fields)


DROPS = [None, "p5"]


@pytest.mark.parametrize("drop", DROPS)
def test_several_columns_at_once(data: dict[str, list[Row]], drop: str | None) -> None:
    rows = union(data, drop)
    for op, want in (
        ("sum", math.fsum),
        ("mean", statistics.fmean),
        ("variance", statistics.variance),
    ):
        result = secure(task(op=op, column="a", columns=["b", "y"]), data, drop)
        assert result.columns is not None
        for column in ("a", "b", "y"):
            values = num(rows, column)
            assert result.columns[column].n == len(values)
            assert close(result.columns[column].value, want(values)), (op, column)
    counted = secure(task(op="count", column="a", columns=["b"]), data, drop)
    assert counted.columns is not None
    assert counted.columns["a"].n == len(num(rows, "a")) < counted.columns["b"].n == len(rows)


@pytest.mark.parametrize("drop", DROPS)
def test_filtered(data: dict[str, list[Row]], drop: str | None) -> None:
    where = [
        {"column": "b", "op": ">=", "value": 5.0},
        {"column": "g", "op": "in", "value": ["north", "west"]},
        {"column": "flag", "op": "==", "value": 1.0},
    ]
    result = secure(task(op="mean", column="y", where=where), data, drop)
    kept = [
        r["y"]
        for r in union(data, drop)
        if r["b"] >= 5.0 and r["g"] in ("north", "west") and r["flag"] == "1"
    ]
    assert result.n == len(kept) > 50
    assert close(result.value, statistics.fmean(kept))


@pytest.mark.parametrize("drop", DROPS)
def test_group_by_with_small_groups_suppressed(
    data: dict[str, list[Row]], drop: str | None
) -> None:
    groups = ["north", "south", "east", "west", "nowhere"]
    t = task(op="mean", column="y", group_by="g", groups=groups, min_group_parties=2)
    result = secure(t, data, drop)
    assert result.groups is not None
    by = {g.group: g for g in result.groups}
    rows = union(data, drop)
    survivors = [p for p in NAMES if p != drop]
    for name in ("north", "south", "east"):
        ys = [r["y"] for r in rows if r["g"] == name]
        assert by[name].parties == len(survivors) - 1  # p3 has only "west"
        assert by[name].n == len(ys) and close(by[name].value, statistics.fmean(ys))
    assert by["west"].parties == 1 and by["west"].suppressed  # one device: hidden
    assert by["west"].n is None and by["west"].value is None
    assert by["nowhere"].parties == 0 and by["nowhere"].suppressed


@pytest.mark.parametrize("drop", DROPS)
def test_covariance(data: dict[str, list[Row]], drop: str | None) -> None:
    result = secure(task(op="covariance", column="a", columns=["b", "y"]), data, drop)
    complete = [r for r in union(data, drop) if r["a"] is not None]
    matrix = np.array([[float(r["a"]), r["b"], r["y"]] for r in complete]).T
    want = np.cov(matrix, ddof=1)
    assert result.n == len(complete) and result.covariance is not None
    got = np.array(result.covariance, dtype=float)
    assert np.allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("drop", DROPS)
def test_ordinary_least_squares(data: dict[str, list[Row]], drop: str | None) -> None:
    result = secure(task(op="ols", column="y", columns=["a", "b"]), data, drop)
    complete = [r for r in union(data, drop) if r["a"] is not None]
    x = np.array([[1.0, float(r["a"]), r["b"]] for r in complete])
    y = np.array([r["y"] for r in complete])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    assert result.n == len(complete) and result.coefficients is not None
    assert close(result.intercept, float(beta[0]), 1e-7)
    assert close(result.coefficients["a"], float(beta[1]), 1e-9)
    assert close(result.coefficients["b"], float(beta[2]), 1e-9)
    residuals = y - x @ beta
    r2 = 1 - float(residuals @ residuals) / float(((y - y.mean()) ** 2).sum())
    assert close(result.r2, r2, 1e-9)


@pytest.mark.parametrize("drop", DROPS)
def test_quantiles_from_a_secure_histogram(data: dict[str, list[Row]], drop: str | None) -> None:
    edges = [float(e) for e in range(-500, 501, 10)]
    qs = [0.1, 0.5, 0.9]
    result = secure(task(op="quantile", column="y", bins=edges, quantiles=qs), data, drop)
    ys = np.array([r["y"] for r in union(data, drop)])
    counts, _ = np.histogram(ys, bins=edges)
    assert result.counts == [int(c) for c in counts]
    assert result.resolution == 10.0 and result.quantiles is not None
    binned = np.sort(ys[(ys >= edges[0]) & (ys <= edges[-1])])
    for q in qs:
        got = result.quantiles[f"{q:g}"]
        # the same interpolation in plaintext, and within one bin of the true quantile
        cumulative = np.cumsum(counts)
        i = int(np.searchsorted(cumulative, q * cumulative[-1]))
        below = cumulative[i - 1] if i else 0
        want = edges[i] + (q * cumulative[-1] - below) / counts[i] * 10.0
        assert close(got, float(want))
        assert got is not None
        assert abs(got - float(np.quantile(binned, q, method="inverted_cdf"))) <= 10.0


def test_impossible_tasks_name_their_field() -> None:
    from edgefleet.fed.analytics.layout import check

    for fields, field in (
        ({"op": "quantile", "column": "y", "bins": [0.0, 1.0]}, "quantiles"),
        ({"op": "ols", "column": "y"}, "columns"),
        ({"op": "covariance", "column": "y"}, "columns"),
        ({"op": "histogram", "column": "y", "bins": [0.0, 1.0], "group_by": "g"}, "group_by"),
        ({"op": "mean", "column": "y", "group_by": "g"}, "groups"),
        ({"op": "sum", "column": "y", "epsilon": 1.0}, "bounds"),
        ({"op": "sum", "column": "y", "bins": [0.0, 1.0]}, "bins"),
    ):
        with pytest.raises(ValueError, match=field):
            check(task(**fields))
