"""Collected data and datasets on the agent connection (agent -> server, but
:class:`DataAck`): buffered records and their acknowledgement, the backlog
report, and the datasets a device's owner declared. Part of the union in
:mod:`edgefleet.wire.messages`, which re-exports these names."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edgefleet.wire.base import Message

DATA_FILE_STREAM = "data-file"
"""Header ``kind`` of the mux stream an agent opens to upload one buffered file
(header: job, seq, name, size, sha256, time; body: the bytes; the server answers
one JSON chunk ``{"ok": true}`` or ``{"error": "..."}`` once the file is stored)."""


class DataRecord(BaseModel):
    """One buffered record: ``record`` is the workload's JSON object as text, so
    neither side re-encodes it; ``seq`` is per (job, stream) on this device."""

    job: str
    stream: str
    seq: int
    time: float = Field(description="when the agent stored it, seconds since the epoch")
    id: str | None = Field(None, description="the workload's record id, if it gave one")
    record: str


class DataBatch(Message):
    """agent -> server: the oldest buffered records; answered by :class:`DataAck`."""

    type: Literal["data_batch"] = "data_batch"
    batch: int
    records: list[DataRecord]


class DataAck(Message):
    """server -> agent: the batch is committed (``ok``), or failed for now
    (``error``: the agent retries). ``discarded`` names jobs whose records the
    server will never take (job deleted, not this device's): the agent drops them.
    ``rejected`` names single records (``job/stream/seq``) the server refused as
    invalid; the rest of the batch is stored, and the agent drops those too."""

    type: Literal["data_ack"] = "data_ack"
    batch: int
    ok: bool = True
    error: str | None = None
    discarded: dict[str, str] = Field(default_factory=dict)
    rejected: dict[str, str] = Field(default_factory=dict)


class StreamBacklog(BaseModel):
    job: str
    stream: str
    pending: int = 0
    pending_bytes: int = 0
    oldest: float | None = None
    accepted: int = 0
    evicted: int = 0
    rejected: int = 0
    last_time: float | None = None


class DataBacklog(Message):
    """agent -> server, every few seconds while something changes: what waits on
    the device per (job, stream), and what was evicted (never silently)."""

    type: Literal["data_backlog"] = "data_backlog"
    streams: list[StreamBacklog] = Field(default_factory=list)
    files_pending: dict[str, int] = Field(default_factory=dict, description="job -> files")
    used_bytes: int = 0
    quota_bytes: int = 0


class DatasetColumn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=256)
    type: Literal["integer", "number", "boolean", "string", "other"]


class DatasetPrivacy(BaseModel):
    """The owner's rules against the analyst, and how much of the budget is spent."""

    model_config = ConfigDict(extra="forbid")

    query_budget: int | None = Field(None, ge=1)
    budget_window: float = Field(86_400.0, gt=0)
    min_difference: int | None = Field(None, ge=1)
    dp_epsilon: float | None = Field(None, gt=0)
    dp_delta: float | None = Field(None, ge=0, lt=1)
    epsilon_spent: float = Field(0.0, ge=0)
    answered: int = Field(0, ge=0, description="computations answered so far")


class DatasetInfo(BaseModel):
    """A dataset as its device describes it: schema, approximate size, owner's policy.
    Never a value (see ``edgefleet.agent.datasets``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=128)
    source: Literal["csv", "jsonl", "parquet", "sqlite", "stream"]
    columns: list[DatasetColumn] = Field(default_factory=list, max_length=1000)
    rows_approx: int = Field(0, ge=0, description="row count rounded to one significant digit")
    bytes_approx: int = Field(0, ge=0)
    allow_projects: list[str] = Field(default_factory=list, max_length=100)
    allow_ops: list[str] = Field(default_factory=list, max_length=10)
    min_parties: int = Field(3, ge=2)
    error: str | None = Field(None, max_length=1000, description="why it cannot be read now")
    privacy: DatasetPrivacy = Field(default_factory=DatasetPrivacy)


class DatasetsReport(Message):
    """agent -> server: every dataset declared on the device (a full snapshot),
    on connect and whenever the owner adds, removes or changes one."""

    type: Literal["datasets"] = "datasets"
    datasets: list[DatasetInfo] = Field(default_factory=list, max_length=100)
