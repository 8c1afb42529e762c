"""A SQLite file, read-only: a table, or a SELECT its owner declared.

The file is opened with ``mode=ro`` and ``PRAGMA query_only``, so neither the
owner's query nor anything an analyst sends can change it; the analyst never
sends SQL at all (filters are evaluated in Python on the rows this query
yields). Columns are those of the table or the query's result.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
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


class SqliteSource:
    def __init__(self, spec: DatasetSpec) -> None:
        assert spec.path is not None
        self.path = Path(spec.path)
        self.sql = spec.query or f'SELECT * FROM "{spec.table}"'

    @contextmanager
    def _cursor(self) -> Iterator[sqlite3.Cursor]:
        try:
            with closing(sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True)) as db:
                db.execute("PRAGMA query_only = ON")
                yield db.execute(self.sql)
        except sqlite3.Error as exc:
            raise DatasetError(f"cannot read {self.path.name}: {exc}") from exc

    def describe(self) -> Description:
        with self._cursor() as cursor:
            header = [d[0] for d in cursor.description or []]
            sample = cursor.fetchmany(SAMPLE_ROWS)
            rest = sum(1 for _ in cursor)
        columns = [
            DatasetColumn(name=name, type=column_type([row[i] for row in sample]))
            for i, name in enumerate(header)
        ]
        return Description(columns=columns, rows=len(sample) + rest, bytes=self.path.stat().st_size)

    def rows(self, names: Sequence[str]) -> list[tuple[object, ...]]:
        with self._cursor() as cursor:
            header = [d[0] for d in cursor.description or []]
            if missing := [n for n in names if n not in header]:
                raise DatasetError(f"no column {missing[0]!r}")
            at = [header.index(n) for n in names]
            return [tuple(row[i] for i in at) for row in cursor]

    def column(self, name: str) -> list[float]:
        values = [number(cell, name, i) for i, (cell,) in enumerate(self.rows([name]), start=1)]
        return [v for v in values if v is not None]
