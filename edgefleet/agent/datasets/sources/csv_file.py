"""CSV with a header row (RFC 4180, via the standard library)."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Sequence
from pathlib import Path

from edgefleet.agent.datasets.registry import DatasetSpec
from edgefleet.agent.datasets.sources.base import (
    SAMPLE_ROWS,
    DatasetError,
    Description,
    column_type,
    number,
)
from edgefleet.wire.messages import DatasetColumn


class CsvSource:
    def __init__(self, spec: DatasetSpec) -> None:
        assert spec.path is not None
        self.path = Path(spec.path)

    def describe(self) -> Description:
        try:
            size = self.path.stat().st_size
            with open(self.path, newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                header = next(reader, None)
                if not header:
                    raise DatasetError(f"{self.path.name} has no header row")
                sample = list(itertools.islice(reader, SAMPLE_ROWS))
                rest = sum(1 for _ in reader)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DatasetError(f"cannot read {self.path.name}: {exc.__class__.__name__}") from exc
        columns = [
            DatasetColumn(
                name=name, type=column_type([row[i] if i < len(row) else None for row in sample])
            )
            for i, name in enumerate(header)
        ]
        return Description(columns=columns, rows=len(sample) + rest, bytes=size)

    def column(self, name: str) -> list[float]:
        values: list[float] = []
        try:
            with open(self.path, newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                header = next(reader, None) or []
                if name not in header:
                    raise DatasetError(f"no column {name!r}")
                index = header.index(name)
                for row_number, row in enumerate(reader, start=1):
                    value = number(row[index] if index < len(row) else None, name, row_number)
                    if value is not None:
                        values.append(value)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DatasetError(f"cannot read {self.path.name}: {exc.__class__.__name__}") from exc
        return values

    def rows(self, names: Sequence[str]) -> list[tuple[object, ...]]:
        out: list[tuple[object, ...]] = []
        try:
            with open(self.path, newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                header = next(reader, None) or []
                if missing := [n for n in names if n not in header]:
                    raise DatasetError(f"no column {missing[0]!r}")
                at = [header.index(n) for n in names]
                for row in reader:
                    out.append(tuple(row[i] if i < len(row) and row[i] != "" else None for i in at))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DatasetError(f"cannot read {self.path.name}: {exc.__class__.__name__}") from exc
        return out
