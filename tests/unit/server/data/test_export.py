"""CSV cells a spreadsheet would evaluate are neutralized; numbers stay numbers."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from edgefleet.server.data.export import _cell, neutralize


def _written(values: list[Any]) -> list[str]:
    out = io.StringIO()
    csv.writer(out).writerow([_cell(v) for v in values])
    return next(csv.reader(io.StringIO(out.getvalue())))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("plain", "plain"),
        ("", ""),
        ("a=1", "a=1"),
    ],
)
def test_strings_that_start_a_formula_get_a_quote(text: str, expected: str) -> None:
    assert neutralize(text) == expected
    assert _cell(text) == expected


def test_numbers_and_booleans_are_written_as_they_are() -> None:
    assert _cell(5) == 5 and _cell(-1) == -1 and _cell(-2.5) == -2.5 and _cell(True) is True
    assert _written([5, -1, -2.5, "-1", "=1+1"]) == ["5", "-1", "-2.5", "'-1", "'=1+1"]


def test_objects_and_arrays_are_compact_json_never_a_formula() -> None:
    assert _cell({"a": "=1"}) == '{"a":"=1"}'
    assert _cell(["-1", 2]) == '["-1",2]'
