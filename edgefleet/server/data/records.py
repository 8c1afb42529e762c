"""What the server accepts as a collected record, and how it writes one out.

A device is trusted to speak for itself only: the agent's connection is
authenticated with the device's credential, so the server knows *which device*
sent a batch, but nothing inside a batch is trusted beyond that. A record's
``record`` text comes from a workload (any code a developer deployed), passes
through an agent that may itself be hostile, and ends up in other people's
JSON readers, spreadsheets and Parquet files. Hence:

- on the way in (:func:`check`), every field of a :class:`DataRecord` is
  checked — the stream name, seq, time and id as the agent's own endpoint
  would, and ``record`` must parse as one JSON *object* (no ``NaN``, no lone
  surrogates, bounded size and nesting). What is stored is the server's own
  re-encoding of the parsed value, never the bytes the device sent;
- on the way out (:func:`decode`, :func:`line`), the stored text is parsed and
  encoded again with ``json.dumps``, so even a row written before these checks
  cannot splice text into a JSON page or a JSON-lines download; the
  ``device``/``stream``/``seq``/``time`` fields come from the row's columns,
  which the ingest fills from the authenticated connection.

Pure functions, no I/O: unit-tested without a server.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from edgefleet.server.schemas import _iso
from edgefleet.wire.messages import DataRecord

STREAM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
MAX_ID_CHARS = 128
MAX_SEQ = 2**63 - 1
LATEST_TIME = 253402300799.0  # 9999-12-31T23:59:59Z, the last second a datetime holds


class RecordError(ValueError):
    """A record the server will not store; the message says why, in plain words."""


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# json.loads/dumps with options build a decoder/encoder per call: each built
# once here (the same options), as every record of every batch passes both.
_DECODER = json.JSONDecoder(parse_constant=_no_constants)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_SPACE = " \t\n\r"  # JSON's whitespace (and "", which decode refuses)


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value (a scalar inside a container counts
    as a level), walked without recursion; only containers are stacked, so a
    flat record (the usual one) costs one pass over its values."""
    if not isinstance(value, dict | list):
        return 1
    deepest = 1
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return depth
        inner = depth + 1
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, inner))
            elif inner > deepest:
                deepest = inner
        if depth > deepest:
            deepest = depth
    return deepest


def _text(value: str, what: str) -> None:
    if "\x00" in value:
        raise RecordError(f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(f"{what} contains a lone surrogate (not valid Unicode)") from None


def canonical(text: str, *, max_bytes: int, max_depth: int) -> str:
    """The record's JSON object re-encoded by the server; raises :class:`RecordError`."""
    return sized(text, max_bytes=max_bytes, max_depth=max_depth)[0]


def sized(text: str, *, max_bytes: int, max_depth: int) -> tuple[str, int]:
    """:func:`canonical`, and its size in UTF-8 bytes (what ingest counts).

    The byte counts need no encoding where the answer is plain: text of ``n``
    code points is at most ``4n`` bytes, ASCII text ``n``; and the depth walk
    is skipped where it cannot exceed ``max_depth`` (``n`` brackets, in
    strings or not, nest at most ``n`` containers deep).
    """
    if len(text) > max_bytes or (
        len(text) * 4 > max_bytes and len(text.encode("utf-8", "surrogatepass")) > max_bytes
    ):
        raise RecordError(f"the record is over {max_bytes} bytes, the limit per record")
    try:
        # raw_decode: the scanner alone, without decode's two whitespace regexes;
        # text it does not fully consume goes through decode (trailing space,
        # or the very error decode raises).
        if text[:1] in _SPACE:
            value = _DECODER.decode(text)
        else:
            value, end = _DECODER.raw_decode(text)
            if end != len(text):
                value = _DECODER.decode(text)
    except RecursionError:
        raise RecordError(f"the record nests deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise RecordError(f"the record is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        kind = "an array" if isinstance(value, list) else type(value).__name__
        raise RecordError(f"a record must be a JSON object, not {kind}")
    if text.count("{") + text.count("[") >= max_depth and _depth(value, max_depth) > max_depth:
        raise RecordError(f"the record nests deeper than {max_depth} levels")
    out = _ENCODER.encode(value)
    if out.isascii():
        size = len(out)
    else:
        try:
            size = len(out.encode("utf-8"))
        except UnicodeEncodeError:
            raise RecordError("the record contains a lone surrogate (not valid Unicode)") from None
    if size > max_bytes:
        raise RecordError(f"the record is over {max_bytes} bytes, the limit per record")
    return out, size


def check(record: DataRecord, *, max_bytes: int, max_depth: int) -> str:
    """Every field of one uploaded record; answers the text to store."""
    return check_sized(record, max_bytes=max_bytes, max_depth=max_depth)[0]


def check_sized(record: DataRecord, *, max_bytes: int, max_depth: int) -> tuple[str, int]:
    """:func:`check`, and the text's size in UTF-8 bytes."""
    if not STREAM_RE.match(record.stream):
        raise RecordError(
            f"stream name {record.stream[:80]!r} is invalid: 1-63 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    if not 0 < record.seq <= MAX_SEQ:
        raise RecordError(f"seq {record.seq} is out of range (1 to {MAX_SEQ})")
    if not math.isfinite(record.time) or not 0 <= record.time <= LATEST_TIME:
        raise RecordError(f"time {record.time} is not a time (seconds since the epoch)")
    if record.id is not None:
        if not record.id or len(record.id) > MAX_ID_CHARS:
            raise RecordError(f"record id must be 1 to {MAX_ID_CHARS} characters")
        _text(record.id, "the record id")
    return sized(record.record, max_bytes=max_bytes, max_depth=max_depth)


def decode(payload: str) -> dict[str, Any] | None:
    """A stored record as a value, or None if the row cannot be read as one
    (only possible for rows stored before ingest checked them)."""
    try:
        value = json.loads(payload, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def line(row: Any) -> bytes | None:
    """One stored row as a JSON object, encoded by ``json.dumps`` from parsed
    values (never the stored text spliced in); None for an unreadable row."""
    record = decode(row.payload)
    if record is None:
        return None
    body = {
        "device": row.device_id,
        "stream": row.stream,
        "seq": row.seq,
        "time": _iso(row.time),
        "id": row.record_id,
        "record": record,
    }
    return json.dumps(body, ensure_ascii=False).encode()
