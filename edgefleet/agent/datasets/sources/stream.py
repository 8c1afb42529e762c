"""A stream of the device's collected data (records workloads hand to the agent
through ``EDGEFLEET_DATA_URL``), declared as ``stream:NAME`` or ``stream:JOB/NAME``.

The agent's data buffer (``<state-dir>/data/buffer.db``) deletes a record once
the server has it, so a dataset cannot read the buffer alone. Declaring the
dataset installs a SQLite trigger in that same database: every record of the
stream the buffer moves into buffer.db (within seconds of its 2xx: at the
latest the uploader's next backlog report, every 5 s, or the agent's stop
moves what the journal holds, uploaded or not) is copied, in the buffer's own
transaction, into
``fed_retained`` (never uploaded, never in the buffer's quota, at most the
dataset's ``retain_rows``, ``--retain`` at declaration, oldest dropped first). Records still buffered at
declaration are copied too; records uploaded and deleted before it are gone.
Each record is one JSON object; its fields are the columns.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from contextlib import closing
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

BUFFER = Path("data") / "buffer.db"

_TABLE = """
CREATE TABLE IF NOT EXISTS fed_retained (
    id INTEGER PRIMARY KEY AUTOINCREMENT, dataset TEXT NOT NULL, time REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fed_retained_dataset ON fed_retained (dataset, id);
"""


def _split(stream: str) -> tuple[str | None, str]:
    job, _, name = stream.rpartition("/")
    return job or None, name


def retain(buffer: Path, dataset: str, stream: str, rows: int) -> None:
    """Install (or replace) the trigger that keeps ``stream``'s records for ``dataset``."""
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,63}", dataset):
        raise DatasetError(f"invalid dataset name {dataset!r}")
    job, name = _split(stream)
    trigger = "fed_keep_" + re.sub(r"[^A-Za-z0-9_]", "_", dataset)
    match = "NEW.stream = :stream" + (" AND NEW.job = :job" if job else "")
    buffer.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not buffer.exists():  # declared before the agent's first start: create its buffer
        from edgefleet.agent.data.buffer import Buffer

        Buffer(buffer, quota_bytes=0).close()
    try:
        with closing(sqlite3.connect(buffer, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_TABLE)  # idempotent; executescript commits, so before BEGIN
            db.execute("BEGIN IMMEDIATE")
            db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            db.execute("DELETE FROM fed_retained WHERE dataset = ?", (dataset,))
            literal = {"stream": name, "job": job or ""}
            quoted = {k: "'" + v.replace("'", "''") + "'" for k, v in literal.items()}
            condition = match.replace(":stream", quoted["stream"]).replace(":job", quoted["job"])
            ds = "'" + dataset + "'"
            db.execute(
                f"CREATE TRIGGER {trigger} AFTER INSERT ON records WHEN {condition} BEGIN "
                f"INSERT INTO fed_retained (dataset, time, payload) "
                f"VALUES ({ds}, NEW.time, NEW.payload); "
                f"DELETE FROM fed_retained WHERE dataset = {ds} AND id <= "
                f"(SELECT max(id) FROM fed_retained WHERE dataset = {ds}) - {int(rows)}; END"
            )
            where = "stream = ?" + (" AND job = ?" if job else "")
            db.execute(
                f"INSERT INTO fed_retained (dataset, time, payload) "
                f"SELECT ?, time, payload FROM records WHERE {where} ORDER BY id",
                (dataset, name, *([job] if job else [])),
            )
            db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise DatasetError(f"cannot keep stream {stream!r}: {exc}") from exc


def forget(buffer: Path, dataset: str) -> None:
    """Drop the trigger and the kept records of a withdrawn dataset."""
    if not buffer.exists():
        return
    trigger = "fed_keep_" + re.sub(r"[^A-Za-z0-9_]", "_", dataset)
    with closing(sqlite3.connect(buffer, isolation_level=None)) as db:
        db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        if db.execute("SELECT 1 FROM sqlite_master WHERE name='fed_retained'").fetchone():
            db.execute("DELETE FROM fed_retained WHERE dataset = ?", (dataset,))


class StreamSource:
    def __init__(self, spec: DatasetSpec) -> None:
        self.dataset = spec.name
        self.stream = spec.stream or ""
        self.path = Path(spec.path) if spec.path else None

    def _records(self, limit: int | None = None) -> list[dict[str, object]]:
        if self.path is None or not self.path.exists():
            raise DatasetError(f"no collected data for stream {self.stream!r} yet")
        sql = "SELECT payload FROM fed_retained WHERE dataset = ? ORDER BY id"
        try:
            with closing(sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True)) as db:
                query = sql + (f" LIMIT {int(limit)}" if limit else "")
                payloads = [p for (p,) in db.execute(query, (self.dataset,))]
        except sqlite3.Error as exc:
            raise DatasetError(f"cannot read stream {self.stream!r}: {exc}") from exc
        out: list[dict[str, object]] = []
        for i, payload in enumerate(payloads, start=1):
            try:
                record = json.loads(payload)
            except ValueError:
                raise DatasetError(f"record {i} of {self.stream!r} is not JSON") from None
            if isinstance(record, dict):
                out.append(record)
        return out

    def describe(self) -> Description:
        sample = self._records(SAMPLE_ROWS)
        names: dict[str, list[object]] = {}
        for record in sample:
            for key, value in record.items():
                names.setdefault(key, []).append(value)
        columns = [DatasetColumn(name=k, type=column_type(v)) for k, v in names.items()]
        return Description(columns=columns, rows=self._count(), bytes=0)

    def _count(self) -> int:
        assert self.path is not None
        sql = "SELECT count(*) FROM fed_retained WHERE dataset = ?"
        try:
            with closing(sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True)) as db:
                return int(db.execute(sql, (self.dataset,)).fetchone()[0])
        except sqlite3.Error as exc:
            raise DatasetError(f"cannot read stream {self.stream!r}: {exc}") from exc

    def rows(self, names: Sequence[str]) -> list[tuple[object, ...]]:
        records = self._records()
        known = {key for record in records for key in record}
        if missing := [n for n in names if n not in known]:
            raise DatasetError(f"no column {missing[0]!r}")
        return [tuple(record.get(n) for n in names) for record in records]

    def column(self, name: str) -> list[float]:
        values = [number(cell, name, i) for i, (cell,) in enumerate(self.rows([name]), start=1)]
        return [v for v in values if v is not None]
