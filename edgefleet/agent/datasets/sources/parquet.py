"""Parquet files, through pyarrow (imported only when a Parquet dataset is used).
The schema and row count come from the file's footer; a computation reads one column."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgefleet.agent.datasets.registry import DatasetSpec
from edgefleet.agent.datasets.sources.base import ColumnType, DatasetError, Description, number
from edgefleet.wire.messages import DatasetColumn


def _kind(arrow_type: Any) -> ColumnType:
    import pyarrow as pa

    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    return "other"


class ParquetSource:
    def __init__(self, spec: DatasetSpec) -> None:
        assert spec.path is not None
        self.path = Path(spec.path)

    def describe(self) -> Description:
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(self.path)
            schema = meta.schema_arrow
            rows = meta.metadata.num_rows
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read {self.path.name}: {exc.__class__.__name__}") from exc
        columns = [DatasetColumn(name=f.name, type=_kind(f.type)) for f in schema]
        return Description(columns=columns, rows=int(rows), bytes=self.path.stat().st_size)

    def column(self, name: str) -> list[float]:
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(self.path)
            if name not in schema.names:
                raise DatasetError(f"no column {name!r}")
            kind = _kind(schema.field(name).type)
            if kind not in ("integer", "number", "boolean"):
                raise DatasetError(f"column {name!r} is {kind}, not numeric")
            cells = pq.read_table(self.path, columns=[name]).column(0).to_pylist()
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read {self.path.name}: {exc.__class__.__name__}") from exc
        values = [number(cell, name, i) for i, cell in enumerate(cells, start=1)]
        return [v for v in values if v is not None]

    def rows(self, names: Sequence[str]) -> list[tuple[object, ...]]:
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(self.path)
            if missing := [n for n in names if n not in schema.names]:
                raise DatasetError(f"no column {missing[0]!r}")
            unique = list(dict.fromkeys(names))
            table = pq.read_table(self.path, columns=unique)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read {self.path.name}: {exc.__class__.__name__}") from exc
        columns = {n: table.column(n).to_pylist() for n in unique}
        return list(zip(*(columns[n] for n in names), strict=True))
