"""The released result, read from the secure sum of every device's
:func:`~edgefleet.fed.analytics.layout.local_vector`.

Without noise the sum is exact (fixed point, 2**-40), and everything is
computed from it in exact rationals: means, sample (co)variances, least
squares by Gaussian elimination over fractions. With differential privacy the
sum is noisy and the result says how: ``epsilon`` spent and the Laplace
``noise_scale`` every summed element carries; counts are rounded, a mean or a
regression over a non-positive noisy count is undefined.

Groups whose party indicator sums to fewer than ``min_group_parties`` are
suppressed: their rows, sums and means are left out, only their name remains.

Quantiles are read from the histogram by linear interpolation inside the bin
that holds the rank: the true quantile (inverted CDF over the binned rows) lies
in that bin, so the error is at most ``resolution`` (the widest bin).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from pydantic import BaseModel, ConfigDict

from edgefleet.fed.analytics.layout import Layout
from edgefleet.fed.messages import Op, Task


class ColumnStat(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int
    value: float | None = None


class GroupStat(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str
    parties: int
    suppressed: bool = False
    n: int | None = None
    value: float | None = None
    columns: dict[str, ColumnStat] | None = None


class Result(BaseModel):
    """One released aggregate. ``op``, ``n`` and ``value`` (or ``counts``/``edges``)
    keep the shape of the single-column statistics; the rest is per operation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Op
    n: int | None = None
    value: float | None = None
    counts: list[int] | None = None
    edges: list[float] | None = None
    columns: dict[str, ColumnStat] | None = None
    groups: list[GroupStat] | None = None
    means: dict[str, float | None] | None = None
    covariance: list[list[float | None]] | None = None
    coefficients: dict[str, float] | None = None
    intercept: float | None = None
    r2: float | None = None
    residual_variance: float | None = None
    quantiles: dict[str, float | None] | None = None
    resolution: float | None = None
    epsilon: float = 0.0
    delta: float = 0.0
    noise_scale: float | None = None
    note: str | None = None


def finish(
    task: Task, layout: Layout, summed: Sequence[float | Fraction], noise_scale: float | None = None
) -> Result:
    if len(summed) != layout.length:
        raise ValueError(f"{task.op} needs {layout.length} sums, got {len(summed)}")
    exact = [Fraction(x) for x in summed]
    privacy = {"epsilon": task.epsilon or 0.0, "noise_scale": noise_scale}
    if not layout.indicator:
        return _block(task, layout, exact, {"op": task.op, **privacy})
    groups: list[GroupStat] = []
    for g, name in enumerate(layout.groups):
        start = g * layout.stride
        parties = max(0, round(exact[start]))
        if parties < task.min_group_parties:
            groups.append(GroupStat(group=str(name), parties=parties, suppressed=True))
            continue
        block = _block(task, layout, exact[start + 1 : start + layout.stride], {"op": task.op})
        groups.append(
            GroupStat(
                group=str(name),
                parties=parties,
                n=block.n,
                value=block.value,
                columns=block.columns,
            )
        )
    return Result.model_validate({"op": task.op, "groups": groups, **privacy})


def _count(x: Fraction) -> int:
    return max(0, round(x))


def _block(task: Task, layout: Layout, s: list[Fraction], base: dict[str, object]) -> Result:
    op, names = layout.op, layout.variables
    if op == "count":
        columns = {
            v: ColumnStat(n=_count(s[j]), value=float(_count(s[j]))) for j, v in enumerate(names)
        }
        first = columns[names[0]]
        return Result.model_validate(
            {**base, "n": first.n, "value": first.value, **_multi(columns)}
        )
    if op in ("sum", "mean", "variance"):
        width = 3 if op == "variance" else 2
        columns = {v: _moment(op, s[width * j : width * (j + 1)]) for j, v in enumerate(names)}
        first = columns[names[0]]
        return Result.model_validate(
            {**base, "n": first.n, "value": first.value, **_multi(columns)}
        )
    if op in ("histogram", "quantile"):
        counts = [_count(c) for c in s[1:]]
        out = {**base, "n": _count(s[0]), "counts": counts, "edges": list(layout.edges)}
        if op == "quantile":
            out["quantiles"] = {
                f"{q:g}": _quantile(counts, layout.edges, q) for q in task.quantiles
            }
            out["resolution"] = max(
                b - a for a, b in zip(layout.edges, layout.edges[1:], strict=False)
            )
        return Result.model_validate(out)
    return _moments(task, layout, s, base)


def _multi(columns: dict[str, ColumnStat]) -> dict[str, object]:
    return {"columns": columns} if len(columns) > 1 else {}


def _moment(op: str, s: list[Fraction]) -> ColumnStat:
    n = _count(s[0])
    if op == "sum":
        return ColumnStat(n=n, value=float(s[1]))
    if op == "mean":
        return ColumnStat(n=n, value=float(s[1] / s[0]) if s[0] > 0 else None)
    if n < 2 or s[0] <= 1:
        return ColumnStat(n=n, value=None)
    variance = (s[2] - s[1] * s[1] / s[0]) / (s[0] - 1)
    return ColumnStat(n=n, value=float(max(variance, Fraction(0))))


def _quantile(counts: list[int], edges: Sequence[float], q: float) -> float | None:
    total = sum(counts)
    if total == 0:
        return None
    rank, below = Fraction(q) * total, 0
    for i, count in enumerate(counts):
        if count and below + count >= rank:
            inside = (rank - below) / count
            return float(
                Fraction(edges[i]) + inside * (Fraction(edges[i + 1]) - Fraction(edges[i]))
            )
        below += count
    return float(edges[-1])


def _moments(task: Task, layout: Layout, s: list[Fraction], base: dict[str, object]) -> Result:
    """Covariance matrix and means; for ols the least-squares fit of y on X."""
    names, k = layout.variables, len(layout.variables)
    n, sums = s[0], s[1 : 1 + k]
    products: dict[tuple[int, int], Fraction] = {}
    at = 1 + k
    for i in range(k):
        for j in range(i, k):
            products[(i, j)] = products[(j, i)] = s[at]
            at += 1
    out: dict[str, object] = {**base, "n": _count(n)}
    if n <= 1:
        return Result.model_validate({**out, "note": "fewer than two complete rows"})
    if task.op == "covariance":
        out["means"] = {v: float(sums[i] / n) for i, v in enumerate(names)}
        out["covariance"] = [
            [float((products[(i, j)] - sums[i] * sums[j] / n) / (n - 1)) for j in range(k)]
            for i in range(k)
        ]
        return Result.model_validate(out)
    p = k - 1  # X columns; the last variable is y
    a = [[n, *sums[:p]]] + [[sums[i], *(products[(i, j)] for j in range(p))] for i in range(p)]
    b = [sums[p], *(products[(i, p)] for i in range(p))]
    beta = _solve(a, b)
    if beta is None:
        return Result.model_validate({**out, "note": "X columns are collinear: no unique fit"})
    sse = products[(p, p)] - sum(bi * yi for bi, yi in zip(beta, b, strict=True))
    sst = products[(p, p)] - sums[p] * sums[p] / n
    out["intercept"] = float(beta[0])
    out["coefficients"] = {v: float(beta[1 + i]) for i, v in enumerate(names[:p])}
    out["r2"] = float(1 - sse / sst) if sst > 0 else None
    out["residual_variance"] = float(max(sse, Fraction(0)) / (n - p - 1)) if n > p + 1 else None
    return Result.model_validate(out)


def _solve(a: list[list[Fraction]], b: list[Fraction]) -> list[Fraction] | None:
    """Gaussian elimination over the rationals: exact, None when singular."""
    size = len(b)
    m = [[*row, rhs] for row, rhs in zip(a, b, strict=True)]
    for col in range(size):
        pivot = next((r for r in range(col, size) if m[r][col] != 0), None)
        if pivot is None:
            return None
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(size):
            if r != col and m[r][col] != 0:
                factor = m[r][col] / m[col][col]
                m[r] = [x - factor * y for x, y in zip(m[r], m[col], strict=True)]
    return [m[i][size] / m[i][i] for i in range(size)]
