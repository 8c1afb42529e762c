"""Downloads of a job's records: JSON lines, CSV, Parquet — streamed.

Rows are read ``PAGE`` at a time, each page in its own short database session,
so a download of millions of records holds neither memory nor a connection.

CSV and Parquet are tables: columns ``device, stream, seq, time, id`` and one
per top-level key of the records (a key that clashes with those gets a
``record.`` prefix). The columns are found by a first pass over the matching
records; Parquet types a column int64, float64, bool or string from what it
holds (objects and arrays are JSON text).

Every record is read back through :func:`records.decode` and written by the
encoder of its format, never copied from the stored text. CSV cells that a
spreadsheet would run as a formula (OWASP's list: a leading ``=``, ``+``,
``-``, ``@``, tab or carriage return) get a leading ``'``, in the header too:
record keys and ids come from workloads. Numbers stay numbers — a JSON number
is written as is; only strings are neutralized, so the *string* ``"-1"``
becomes ``'-1`` while the number ``-1`` stays ``-1``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.data import query, records
from edgefleet.server.data.query import Filters
from edgefleet.server.schemas import _iso

PAGE = 5000
FIXED = ("device", "stream", "seq", "time", "id")
Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]

MEDIA = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


async def _pages(sessions: Sessions, filters: Filters) -> AsyncIterator[list[Any]]:
    after = 0
    while True:
        async with sessions() as db:
            page = await query.rows(db, filters, after, PAGE)
        if not page:
            return
        yield page
        after = page[-1].pk


async def jsonl(sessions: Sessions, filters: Filters) -> AsyncIterator[bytes]:
    async for page in _pages(sessions, filters):
        lines = [x for x in (records.line(r) for r in page) if x is not None]
        if lines:
            yield b"\n".join(lines) + b"\n"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "null" if value is None else "json"


_MERGE = {
    frozenset({"int", "float"}): "float",
}


async def _columns(sessions: Sessions, filters: Filters) -> dict[str, str]:
    """Pass one: every top-level key, in first-seen order, with its type."""
    kinds: dict[str, str] = {}
    async for page in _pages(sessions, filters):
        for row in page:
            for key, value in (records.decode(row.payload) or {}).items():
                kind = _kind(value)
                have = kinds.get(key)
                if have is None or have == "null":
                    kinds[key] = kind
                elif kind not in ("null", have):
                    kinds[key] = _MERGE.get(frozenset({have, kind}), "string")
    return kinds


def _names(keys: dict[str, str]) -> dict[str, str]:
    return {k: f"record.{k}" if k in FIXED else k for k in keys}


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize(text: str) -> str:
    """A string a spreadsheet will show as text, not evaluate (OWASP CSV injection)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _cell(value: Any) -> Any:
    """A CSV cell: numbers and booleans as they are, strings neutralized, objects
    and arrays as compact JSON (which starts with ``{`` or ``[``, never a formula)."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, str):
        return neutralize(value)
    return value


async def csv_rows(sessions: Sessions, filters: Filters) -> AsyncIterator[bytes]:
    keys = await _columns(sessions, filters)
    names = _names(keys)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*FIXED, *(neutralize(n) for n in names.values())])
    yield out.getvalue().encode()
    async for page in _pages(sessions, filters):
        out.seek(0)
        out.truncate()
        for row in page:
            record = records.decode(row.payload)
            if record is None:
                continue
            writer.writerow(
                [
                    neutralize(row.device_id),
                    neutralize(row.stream),
                    row.seq,
                    _iso(row.time),
                    neutralize(row.record_id or ""),
                    *(_cell(record.get(k, "")) for k in keys),
                ]
            )
        yield out.getvalue().encode()


class _Sink:
    """A write-only file for pyarrow whose bytes are drained after each row group."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.buffer += data
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def drain(self) -> bytes:
        data, self.buffer = bytes(self.buffer), bytearray()
        return data


async def parquet(sessions: Sessions, filters: Filters) -> AsyncIterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys = await _columns(sessions, filters)
    names = _names(keys)
    types = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
    fields = [
        pa.field("device", pa.string()),
        pa.field("stream", pa.string()),
        pa.field("seq", pa.int64()),
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("id", pa.string()),
        *(pa.field(names[k], types.get(kind, pa.string())) for k, kind in keys.items()),
    ]
    schema = pa.schema(fields)
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    try:
        async for page in _pages(sessions, filters):
            pairs = [(r, records.decode(r.payload)) for r in page]
            page = [r for r, rec in pairs if rec is not None]
            decoded = [rec for _, rec in pairs if rec is not None]
            columns: list[list[Any]] = [
                [r.device_id for r in page],
                [r.stream for r in page],
                [r.seq for r in page],
                [r.time for r in page],
                [r.record_id for r in page],
            ]
            for key, kind in keys.items():
                values = [rec.get(key) for rec in decoded]
                if kind in ("json", "string"):
                    values = [
                        v if v is None or isinstance(v, str) else json.dumps(v) for v in values
                    ]
                elif kind == "float":
                    values = [float(v) if v is not None else None for v in values]
                columns.append(values)
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
            yield sink.drain()
    finally:
        writer.close()
    yield sink.drain()
