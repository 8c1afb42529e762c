"""What every dataset reader offers, and the helpers they share.

A reader's errors name rows and columns, never a value: they travel to the
server as the reason a device declined a computation, and into logs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, Protocol

from edgefleet.wire.messages import DatasetColumn

SAMPLE_ROWS = 1000  # rows read to infer column types and estimate the row count


class DatasetError(Exception):
    """The dataset cannot be read, or a column cannot be aggregated."""


@dataclass
class Description:
    columns: list[DatasetColumn] = field(default_factory=list)
    rows: int = 0  # exact or estimated; reported only through :func:`approximate`
    bytes: int = 0


class Source(Protocol):
    def describe(self) -> Description:
        """Column names and types (from a sample of rows), and the size. Called only
        when the file changed."""

    def column(self, name: str) -> list[float]:
        """Every non-missing value of one column as floats (booleans as 0/1).
        Raises :class:`DatasetError` naming the column (and row), never the value."""

    def rows(self, names: Sequence[str]) -> list[tuple[object, ...]]:
        """Every row as raw cells of the ``names`` columns, in that order (None for a
        missing cell), for filters, groups and several columns at once. Raises
        :class:`DatasetError` for a column the dataset does not have."""


def approximate(count: int) -> int:
    """A size fit for reporting: one significant digit, and never below 10 for a
    non-empty dataset, so no device's exact row count (its ``count``) leaves it."""
    if count <= 0:
        return 0
    magnitude = int(10 ** max(int(math.log10(count)), 1))
    return max(10, round(count / magnitude) * magnitude)


def number(value: object, column: str, row: int) -> float | None:
    """A cell as a float; None for a missing one."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "false"):
            return 1.0 if text == "true" else 0.0
        try:
            return float(text)
        except ValueError:
            pass
    raise DatasetError(f"column {column!r}: row {row} is not a number")


ColumnType = Literal["integer", "number", "boolean", "string", "other"]


def column_type(values: list[object]) -> ColumnType:
    """integer, number, boolean or string, from a sample of one column's cells."""
    kinds: set[str] = set()
    for value in values:
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            kinds.add("boolean")
        elif isinstance(value, int):
            kinds.add("integer")
        elif isinstance(value, float):
            kinds.add("number")
        elif isinstance(value, str):
            kinds.add(_text_kind(value))
        else:
            kinds.add("other")
    if not kinds:
        return "number"
    if kinds <= {"integer"}:
        return "integer"
    if kinds <= {"integer", "number"}:
        return "number"
    if kinds == {"boolean"}:
        return "boolean"
    return "string" if kinds <= {"integer", "number", "boolean", "string"} else "other"


def _text_kind(text: str) -> str:
    text = text.strip()
    if text.lower() in ("true", "false"):
        return "boolean"
    try:
        int(text)
        return "integer"
    except ValueError:
        pass
    try:
        float(text)
        return "number"
    except ValueError:
        return "string"
