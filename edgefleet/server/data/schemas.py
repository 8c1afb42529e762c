"""API shapes of collected data."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from edgefleet.server.schemas import Output, Timestamp


class RecordOut(BaseModel):
    device: str
    stream: str
    seq: int
    time: Timestamp
    id: str | None = None
    record: dict[str, Any]


class RecordPage(BaseModel):
    items: list[RecordOut]
    next: str | None = None
    total: int | None = None


class StreamSummary(BaseModel):
    device: str
    device_name: str | None = None
    stream: str | None = None
    records: int = 0
    bytes: int = 0
    last_seq: int = 0
    first_time: Timestamp | None = None
    last_time: Timestamp | None = None
    backlog: int = 0
    backlog_bytes: int = 0
    oldest_backlog: Timestamp | None = None
    accepted_on_device: int = 0
    evicted: int = 0
    rejected: int = 0
    reported_at: Timestamp | None = None
    files: int = 0


class Summary(BaseModel):
    job: str
    items: list[StreamSummary]
    records: int
    backlog: int
    evicted: int


class FileOut(Output):
    id: str
    device: str
    seq: int
    name: str
    size: int
    sha256: str
    time: Timestamp
