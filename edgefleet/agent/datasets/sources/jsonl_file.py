"""JSON lines: one JSON object a line (blank lines skipped)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from edgefleet.agent.datasets.registry import DatasetSpec
from edgefleet.agent.datasets.sources.base import (
    SAMPLE_ROWS,
    DatasetError,
    Description,
    column_type,
    number,
)
from edgefleet.wire.messages import DatasetColumn


class JsonLinesSource:
    def __init__(self, spec: DatasetSpec) -> None:
        assert spec.path is not None
        self.path = Path(spec.path)

    def _rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                for line_number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except ValueError:
                        raise DatasetError(f"line {line_number} is not JSON") from None
                    if not isinstance(row, dict):
                        raise DatasetError(f"line {line_number} is not a JSON object")
                    yield line_number, row
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot read {self.path.name}: {exc.__class__.__name__}") from exc

    def describe(self) -> Description:
        names: dict[str, list[object]] = {}
        rows = 0
        for _, row in self._rows():
            if rows < SAMPLE_ROWS:
                for key, value in row.items():
                    names.setdefault(key, []).append(value)
            rows += 1
        columns = [DatasetColumn(name=k, type=column_type(v)) for k, v in names.items()]
        return Description(columns=columns, rows=rows, bytes=self.path.stat().st_size)

    def column(self, name: str) -> list[float]:
        values: list[float] = []
        for line_number, row in self._rows():
            value = number(row.get(name), name, line_number)
            if value is not None:
                values.append(value)
        return values

    def rows(self, names: Sequence[str]) -> list[tuple[object, ...]]:
        records = [row for _, row in self._rows()]
        known = {key for row in records for key in row}
        if missing := [n for n in names if n not in known]:
            raise DatasetError(f"no column {missing[0]!r}")
        return [tuple(row.get(n) for n in names) for row in records]
