"""Which vector a device contributes for a :class:`~edgefleet.fed.messages.Task`,
and how long it is. The protocol adds the vectors; :mod:`.decode` reads the sum.

One *block* per group (one block when there is no ``group_by``), in the order the
analyst listed the groups; with ``group_by`` each block starts with a 0/1
indicator "this device has rows in the group", so the sum counts the parties
behind every group and small groups can be suppressed::

    op                 block (k = number of variables)                  variables
    count              n_1 .. n_k                                        column, *columns
    sum, mean          (n_v, sum v) per variable                         column, *columns
    variance           (n_v, sum v, sum v^2) per variable                column, *columns
    histogram,quantile n, c_1 .. c_m  (m bins)                           column
    covariance         n, sum v_i, sum v_i v_j (i <= j)   complete rows  column, *columns
    ols                the same moments over (x_1 .. x_p, y)             columns (X), column (y)

Per-variable n counts the rows where that variable is present; covariance and
ols use the rows where every variable is present. Everything is a sum over
rows, so the sum over devices is the same quantity over the union of the rows.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from edgefleet.fed.analytics.query import holds, number_of, text_of
from edgefleet.fed.messages import Task

GROUPED_OPS = ("count", "sum", "mean", "variance")
MAX_LENGTH = 100_000  # elements of one contribution


@dataclass(frozen=True)
class Layout:
    """The shape of one contribution: fixed by the task, the same on every device."""

    op: str
    variables: tuple[str, ...]
    groups: tuple[str | None, ...]  # (None,) without group_by
    edges: tuple[float, ...]  # histogram and quantile
    block: int  # elements per group, after the indicator

    @property
    def indicator(self) -> bool:
        return self.groups != (None,)

    @property
    def stride(self) -> int:
        return self.block + (1 if self.indicator else 0)

    @property
    def length(self) -> int:
        return self.stride * len(self.groups)

    def columns_read(self, task: Task) -> list[str]:
        """Every column the device reads for this task (values, filters, group)."""
        names = [*self.variables, *(c.column for c in task.where)]
        if task.group_by:
            names.append(task.group_by)
        return list(dict.fromkeys(names))


def variables(task: Task) -> tuple[str, ...]:
    if task.op == "ols":
        return (*dict.fromkeys(task.columns), task.column)
    return tuple(dict.fromkeys([task.column, *task.columns]))


def check(task: Task) -> Layout:
    """The layout, or ValueError naming the field that makes the task impossible."""
    op, names = task.op, variables(task)
    edges: tuple[float, ...] = ()
    if op in ("histogram", "quantile"):
        edges = tuple(bin_edges(task.bins))
        if task.columns:
            raise ValueError(f"columns: {op} is over one column")
    elif task.bins is not None:
        raise ValueError(f"bins: only for histogram and quantile, not {op}")
    if op == "quantile":
        if not task.quantiles or any(not 0 < q < 1 for q in task.quantiles):
            raise ValueError("quantiles: give one or more fractions strictly between 0 and 1")
    elif task.quantiles:
        raise ValueError(f"quantiles: only for quantile, not {op}")
    if op == "ols" and (not task.columns or task.column in task.columns):
        raise ValueError("columns: ols needs the X columns in columns and y in column")
    if op == "covariance" and len(names) < 2:
        raise ValueError("columns: covariance needs at least two columns")
    groups: tuple[str | None, ...] = (None,)
    if task.group_by is not None:
        if op not in GROUPED_OPS:
            raise ValueError(f"group_by: only with {', '.join(GROUPED_OPS)}, not {op}")
        texts = [text_of(g) for g in task.groups]
        if not texts:
            raise ValueError("groups: name the groups to compute (the values of group_by)")
        if len(set(texts)) != len(texts):
            raise ValueError("groups: each group once")
        groups = tuple(texts)
    elif task.groups:
        raise ValueError("groups: only with group_by")
    if task.epsilon is not None:
        unbounded = [v for v in names if v not in task.bounds] if op not in _COUNTING else []
        if unbounded:
            raise ValueError(
                f"bounds: differential privacy needs [lo, hi] for {', '.join(unbounded)}"
            )
    for column, (lo, hi) in task.bounds.items():
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"bounds: {column} needs finite lo < hi")
    layout = Layout(op, names, groups, edges, _block(op, len(names), len(edges)))
    if layout.length > MAX_LENGTH:
        raise ValueError(f"the result would have {layout.length} elements; at most {MAX_LENGTH}")
    return layout


_COUNTING = ("count", "histogram", "quantile")


def _block(op: str, k: int, edges: int) -> int:
    if op == "count":
        return k
    if op in ("sum", "mean"):
        return 2 * k
    if op == "variance":
        return 3 * k
    if op in ("histogram", "quantile"):
        return edges  # n and edges - 1 bins
    return 1 + k + k * (k + 1) // 2  # covariance, ols


def bin_edges(bins: Sequence[float] | None) -> list[float]:
    """A histogram's edges, checked: at least two, finite, strictly increasing."""
    edges = list(bins or [])
    if len(edges) < 2 or any(not math.isfinite(e) for e in edges):
        raise ValueError("bins: at least two finite bin edges")
    if any(b <= a for a, b in pairwise(edges)):
        raise ValueError("bins: edges must increase strictly")
    return edges


def local_vector(
    task: Task, layout: Layout, names: Sequence[str], rows: Iterable[Sequence[object]]
) -> list[float]:
    """What one device contributes: its rows (cells in the order of ``names``,
    which holds at least :meth:`Layout.columns_read`) folded into the layout.
    With ``task.epsilon`` values are clipped to ``task.bounds`` (the noise itself
    is added by :mod:`.noise`). Raises ValueError naming a column and row, never a value."""
    at = {name: i for i, name in enumerate(names)}
    missing = [c for c in layout.columns_read(task) if c not in at]
    if missing:
        raise ValueError(f"no column {missing[0]!r}")
    value_at = [at[v] for v in layout.variables]
    clip = [task.bounds.get(v) if task.epsilon is not None else None for v in layout.variables]
    where = [(condition, at[condition.column]) for condition in task.where]
    group_at = at[task.group_by] if task.group_by else None
    index = {g: i for i, g in enumerate(layout.groups)}
    terms: list[list[float]] = [[] for _ in range(layout.length)]
    seen = [False] * len(layout.groups)
    for row_number, row in enumerate(rows, start=1):
        if not all(holds(condition, row[i]) for condition, i in where):
            continue
        g = 0
        if group_at is not None:
            found = index.get(text_of(row[group_at]))
            if found is None:
                continue
            g = found
        values = [_value(row[i], layout.variables[j], row_number) for j, i in enumerate(value_at)]
        values = [_clip(v, c) for v, c in zip(values, clip, strict=True)]
        base = g * layout.stride
        if layout.indicator:
            seen[g] = True
            base += 1
        _fold(layout, values, terms, base)
    out = [math.fsum(t) for t in terms]
    if layout.indicator:
        for g, present in enumerate(seen):
            out[g * layout.stride] = 1.0 if present else 0.0
    return out


def _value(cell: object, column: str, row: int) -> float | None:
    if cell is None or cell == "":
        return None
    value = number_of(cell)
    if value is None:
        raise ValueError(f"column {column!r}: row {row} is not a number")
    return value


def _clip(value: float | None, bounds: tuple[float, float] | None) -> float | None:
    if value is None or bounds is None:
        return value
    return min(max(value, bounds[0]), bounds[1])


def _fold(layout: Layout, values: list[float | None], terms: list[list[float]], base: int) -> None:
    op = layout.op
    if op == "count":
        for j, v in enumerate(values):
            if v is not None:
                terms[base + j].append(1.0)
    elif op in ("sum", "mean", "variance"):
        width = 3 if op == "variance" else 2
        for j, v in enumerate(values):
            if v is None:
                continue
            at = base + width * j
            terms[at].append(1.0)
            terms[at + 1].append(v)
            if width == 3:
                terms[at + 2].append(v * v)
    elif op in ("histogram", "quantile"):
        x = values[0]
        if x is None:
            return
        terms[base].append(1.0)
        edges = layout.edges
        i = len(edges) - 2 if x == edges[-1] else bisect_right(edges, x) - 1
        if 0 <= i < len(edges) - 1:
            terms[base + 1 + i].append(1.0)
    else:  # covariance, ols: moments over complete rows
        if any(v is None for v in values):
            return
        xs = [v for v in values if v is not None]
        terms[base].append(1.0)
        for j, v in enumerate(xs):
            terms[base + 1 + j].append(v)
        at = base + 1 + len(xs)
        for i in range(len(xs)):
            for j in range(i, len(xs)):
                terms[at].append(xs[i] * xs[j])
                at += 1


def sensitivity(task: Task, layout: Layout) -> float:
    """L1 change of the whole vector when one row is added or removed (values
    clipped to ``bounds``): what the Laplace noise is scaled to."""
    bound = [max(abs(x) for x in task.bounds.get(v, (0.0, 0.0))) for v in layout.variables]
    op = layout.op
    if op == "count":
        body = float(len(bound))
    elif op in ("sum", "mean"):
        body = sum(1 + b for b in bound)
    elif op == "variance":
        body = sum(1 + b + b * b for b in bound)
    elif op in ("histogram", "quantile"):
        body = 2.0
    else:
        pairs = sum(bound[i] * bound[j] for i in range(len(bound)) for j in range(i, len(bound)))
        body = 1 + sum(bound) + pairs
    return body + (1.0 if layout.indicator else 0.0)
