"""What an analyst may ask beyond "one column of one dataset": the pieces of a
:class:`~edgefleet.fed.messages.Task` that choose rows (``where``), split them
(``group_by`` over a list of ``groups`` named in advance) and bound them for
differential privacy (``bounds``). Pure pydantic, no I/O, imported by the wire
protocol on every agent.

Groups are named by the analyst, never discovered: the vector every device
contributes must have the same length, and a device listing the categories it
holds would leak them. Rows whose group is not listed are left out.

Cells are compared the way a person reads them: a number in the condition
compares numerically (a cell that is not a number fails it), a string compares
with the cell's text (``"3"`` and ``3.0`` both read ``3``), ``true``/``false``
with booleans, which also read ``1``/``0`` (as datasets store them: a CSV
``1``, a JSON ``true`` and a SQLite ``1`` are the same). A missing cell fails
every condition.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_CONDITIONS = 16
MAX_IN_LIST = 100
MAX_GROUPS = 100
MAX_COLUMNS = 16
MAX_QUANTILES = 99

ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Scalar = float | bool | Annotated[str, StringConstraints(max_length=256)]
Comparison = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in"]


class Condition(BaseModel):
    """One filter on one column; a task's conditions must all hold (AND)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: ColumnName
    op: Comparison
    value: Scalar | list[Scalar] = Field(description="a list for in / not_in")

    @model_validator(mode="after")
    def _shape(self) -> Condition:
        if self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not 1 <= len(self.value) <= MAX_IN_LIST:
                raise ValueError(f"{self.op} needs a list of 1..{MAX_IN_LIST} values")
            values = self.value
        elif isinstance(self.value, list):
            raise ValueError(f"{self.op} compares with one value, not a list")
        else:
            values = [self.value]
        for value in values:
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("values must be finite")
        if self.op in ("<", "<=", ">", ">=") and (
            isinstance(self.value, bool | str) or not isinstance(self.value, float | int)
        ):
            raise ValueError(f"{self.op} compares numbers; got {type(self.value).__name__}")
        return self


def text_of(cell: object) -> str | None:
    """The canonical text of a cell or condition value: how groups and string
    equality see it (``3``, ``3.0`` and ``"3"`` are all ``"3"``)."""
    if cell is None:
        return None
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, int):
        return str(cell)
    if isinstance(cell, float):
        return str(int(cell)) if cell.is_integer() and abs(cell) < 2**53 else repr(cell)
    text = str(cell).strip()
    if text.lower() in ("true", "false"):
        return text.lower()
    try:
        number = float(text)
    except ValueError:
        return text
    return text_of(number) if math.isfinite(number) else text


def number_of(cell: object) -> float | None:
    """A cell as a number, None if it is missing or not a number."""
    if cell is None or isinstance(cell, bool):
        return None if cell is None else float(cell)
    if isinstance(cell, int | float):
        return float(cell) if math.isfinite(cell) else None
    try:
        value = float(str(cell).strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def holds(condition: Condition, cell: object) -> bool:
    """Whether one cell meets one condition (a missing cell never does)."""
    if cell is None or cell == "":
        return False
    op, value = condition.op, condition.value
    if op in ("in", "not_in"):
        assert isinstance(value, list)
        found = any(_equal(cell, v) for v in value)
        return found if op == "in" else not found
    assert not isinstance(value, list)
    if op == "==":
        return _equal(cell, value)
    if op == "!=":
        return not _equal(cell, value)
    number = number_of(cell)
    if number is None or isinstance(value, bool | str):
        return False
    return {
        "<": number < value,
        "<=": number <= value,
        ">": number > value,
        ">=": number >= value,
    }[op]


def _truth(cell: object) -> bool | None:
    """A cell read as a boolean: true/false, 1/0 (number or text); else None."""
    if isinstance(cell, bool):
        return cell
    text = text_of(cell)
    return {"true": True, "1": True, "false": False, "0": False}.get(text or "")


def _equal(cell: object, value: Scalar) -> bool:
    if isinstance(value, bool):
        return _truth(cell) is value
    if isinstance(value, float | int):
        number = number_of(cell)
        return number is not None and number == value
    return text_of(cell) == text_of(value)


_CONDITION = re.compile(r"\s*([^\s<>=!]+)\s*(==|!=|<=|>=|=|<|>|\s+in\s+|\s+not_in\s+)(.+)")


def parse_condition(text: str) -> dict[str, object]:
    """``temp>=20``, ``site==a``, ``site in a,b``, ``site not_in c`` as the JSON of a
    :class:`Condition` (for the CLI's ``--where`` and the portal's form); ValueError
    if it has no operator. Numbers become numbers, the rest text."""
    match = _CONDITION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r}: expected COLUMN OP VALUE, e.g. temp>=20 or site in a,b")
    column, op, value = match.group(1), match.group(2).strip(), match.group(3).strip()
    op = "==" if op == "=" else op
    if op in ("in", "not_in"):
        return {"column": column, "op": op, "value": [scalar(v) for v in value.split(",")]}
    return {"column": column, "op": op, "value": scalar(value)}


def scalar(text: str) -> float | str:
    """A typed value: a finite number if it reads as one, else the text."""
    try:
        number = float(text)
    except ValueError:
        return text.strip()
    return number if math.isfinite(number) else text.strip()
