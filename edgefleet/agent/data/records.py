"""What a POST brings the buffer and what the buffer says back: the shapes
shared by the endpoint, the group commit and the buffer, and how a record
is counted against the quota."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgefleet.agent.data.errors import BufferError
from edgefleet.agent.data.journal import Row

RECORD_OVERHEAD = 64  # bytes counted per record on top of its payload
UPLOADED = -1  # a Row's id once the server committed it before it was moved into SQLite


def record_size(payload: str) -> int:
    """A payload's size in UTF-8 bytes, ASCII text (the usual) without encoding it."""
    return len(payload) if payload.isascii() else len(payload.encode())


@dataclass
class Incoming:
    """Records of one request, for one job and stream; ``rid`` per record or None."""

    job: str
    stream: str
    records: list[tuple[str | None, str]]


@dataclass
class Stored:
    """What happened to each record of an :class:`Incoming`: its seq, and
    whether it was already there (same record id)."""

    seqs: list[int] = field(default_factory=list)
    duplicates: int = 0


@dataclass
class Planned:
    """A group of requests given seqs and quota but not yet durable
    (:meth:`Buffer.prepare`): ``data`` is its journal entry (empty when every
    record was a duplicate or refused)."""

    results: list[Stored | BufferError]
    entries: list[Row]
    ids: dict[tuple[str, str, str], int]
    added: int
    data: bytes


@dataclass
class StreamStats:
    job: str
    stream: str
    pending: int
    pending_bytes: int
    oldest: float | None
    accepted: int
    uploaded: int
    evicted: int
    rejected: int
    last_time: float | None
