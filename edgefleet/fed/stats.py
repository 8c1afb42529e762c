"""Statistics computed from secure sums: each device turns its column into a short
vector of local sums, the protocol adds the vectors, and :func:`finish` turns the
total into the statistic. The server learns the totals and nothing finer::

    op          local vector (per device)      the server learns
    count       [n]                            n
    sum         [n, sum x]                     n, sum x
    mean        [n, sum x]                     n, sum x            -> sum x / n
    variance    [n, sum x, sum x^2]            n, sum x, sum x^2   -> sample variance
    histogram   [n, c_1 .. c_m]                n, counts per bin

``variance`` is the *sample* variance (ddof=1, like ``statistics.variance`` and
``numpy.var(ddof=1)``), undefined below two rows. It is computed exactly from the
fixed-point totals, so the only rounding is in each device's local sums (``fsum``,
correctly rounded) and the 2**-40 fixed-point step; relative error stays far below
1e-9 unless the mean dwarfs the spread (|mean| / stddev > ~1e3).

Histogram bins follow ``numpy.histogram``: strictly increasing edges e_0 < .. < e_m,
bin i is [e_i, e_{i+1}) and the last bin is closed; values outside are not binned
(but are counted in n).

A whole :class:`~edgefleet.fed.messages.Task` (several columns, ``where``,
``group_by``, covariance, ols, quantiles, differential privacy) goes through
:func:`task_params`, :func:`contribution` and :func:`release`, built on
:mod:`edgefleet.fed.analytics`; the functions above are the one-column case.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from fractions import Fraction

from pydantic import BaseModel, ConfigDict

from edgefleet.fed.analytics import decode, layout, noise
from edgefleet.fed.analytics.decode import Result
from edgefleet.fed.messages import Op, Params, Task

OPS: tuple[Op, ...] = ("count", "sum", "mean", "variance", "histogram")  # one column
TASK_OPS: tuple[Op, ...] = (*OPS, "covariance", "ols", "quantile")
DEFAULT_BOUND = 2.0**60  # |sum x^2| of one device: 1e6 rows of values up to 1e6
COUNTING_OPS: tuple[Op, ...] = ("count", "histogram", "quantile")  # whole counts only
MAX_ROWS = 2**40  # rows one device may count; a party refuses a larger count (Ring.encode)


class Statistic(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Op
    n: int
    value: float | None = None  # count, sum, mean, variance; None where undefined
    counts: list[int] | None = None  # histogram
    edges: list[float] | None = None  # histogram


def vector_length(op: Op, bins: Sequence[float] | None = None) -> int:
    if op == "histogram":
        return 1 + len(layout.bin_edges(bins)) - 1
    return {"count": 1, "sum": 2, "mean": 2, "variance": 3}[op]


def params_for(op: Op, bins: Sequence[float] | None = None, bound: float = DEFAULT_BOUND) -> Params:
    """Encoding parameters for one statistic (128-bit ring, scale 2**40)."""
    return Params(length=vector_length(op, bins), bound=bound)


def local_vector(
    op: Op, values: Sequence[float], bins: Sequence[float] | None = None
) -> list[float]:
    """What one device contributes for ``op`` over its ``values``."""
    for value in values:
        if not math.isfinite(value):
            raise ValueError("cannot aggregate a value that is not finite")
    n = float(len(values))
    if op == "count":
        return [n]
    if op in ("sum", "mean"):
        return [n, math.fsum(values)]
    if op == "variance":
        return [n, math.fsum(values), math.fsum(x * x for x in values)]
    if op == "histogram":
        edges = layout.bin_edges(bins)
        counts = [0] * (len(edges) - 1)
        for x in values:
            i = bisect_right(edges, x) - 1
            if x == edges[-1]:
                i = len(counts) - 1
            if 0 <= i < len(counts):
                counts[i] += 1
        return [n, *map(float, counts)]
    raise ValueError(f"unknown operation {op!r}")


def finish(
    op: Op, summed: Sequence[float | Fraction], bins: Sequence[float] | None = None
) -> Statistic:
    """The statistic from the secure sum of every device's :func:`local_vector`."""
    if len(summed) != vector_length(op, bins):
        raise ValueError(f"{op} needs {vector_length(op, bins)} sums, got {len(summed)}")
    exact = [Fraction(x) for x in summed]
    n = round(exact[0])
    if op == "count":
        return Statistic(op=op, n=n, value=float(n))
    if op == "sum":
        return Statistic(op=op, n=n, value=float(exact[1]))
    if op == "mean":
        return Statistic(op=op, n=n, value=float(exact[1] / n) if n > 0 else None)
    if op == "variance":
        if n < 2:
            return Statistic(op=op, n=n, value=None)
        sum_x, sum_xx = exact[1], exact[2]
        variance = (sum_xx - sum_x * sum_x / n) / (n - 1)
        return Statistic(op=op, n=n, value=float(max(variance, Fraction(0))))
    edges = layout.bin_edges(bins)
    return Statistic(op=op, n=n, counts=[round(c) for c in exact[1:]], edges=list(edges))


def task_params(task: Task, bound: float | None = None, parties: int | None = None) -> Params:
    """Encoding parameters for a task; ValueError naming the field if it is impossible.

    With ``parties`` the ring is the smallest that fits (:meth:`Params.fitting`):
    a task whose every element is a whole count (count, histogram, quantile
    without differential privacy) is encoded exactly at scale 1 with room for
    :data:`MAX_ROWS` rows per device, so it travels in 64-bit elements; sums of
    values keep scale 2**40 and |x| <= ``bound`` (2**60 unless given), 128-bit
    for the default bound. Without ``parties``: the 128-bit default (what the
    vector length check on a device needs)."""
    length = layout.check(task).length
    if parties is None:
        return Params(length=length, bound=DEFAULT_BOUND if bound is None else bound)
    if bound is None and task.op in COUNTING_OPS and task.epsilon is None:
        return Params.fitting(length, float(MAX_ROWS), parties, frac_bits=0)
    return Params.fitting(length, DEFAULT_BOUND if bound is None else bound, parties)


def noise_scale(task: Task) -> float | None:
    """The Laplace scale every released element carries, None without ``epsilon``."""
    if task.epsilon is None:
        return None
    return noise.scale(layout.sensitivity(task, layout.check(task)), task.epsilon)


def contribution(
    task: Task, names: Sequence[str], rows: Iterable[Sequence[object]], threshold: int
) -> list[float]:
    """One device's vector for ``task`` from its rows, with its share of the noise
    when the task asks for differential privacy (shares for ``threshold`` parties)."""
    shape = layout.check(task)
    vector = layout.local_vector(task, shape, names, rows)
    scale = noise_scale(task)
    if scale is not None:
        vector = [
            x + e for x, e in zip(vector, noise.share(len(vector), scale, threshold), strict=True)
        ]
    return vector


def release(task: Task, summed: Sequence[float | Fraction]) -> Result:
    """The result of ``task`` from the secure sum of every device's contribution."""
    return decode.finish(task, layout.check(task), summed, noise_scale(task))
