"""What the server answers about datasets, federated computations and collected data.

Typed views of the JSON bodies (generated once from the server's OpenAPI
schemas): plain dicts at run time, so ``result["id"]`` keeps working, and
mypy checks every key a caller reads.
"""

from __future__ import annotations

from typing import Any, TypedDict


class DatasetColumn(TypedDict):
    """A column of a dataset: its name and type, never a value."""

    name: str
    type: str


class DatasetPrivacy(TypedDict):
    """The owner's rules against the analyst, and how much of the budget is spent."""

    query_budget: int | None
    budget_window: float
    min_difference: int | None
    dp_epsilon: float | None
    dp_delta: float | None
    epsilon_spent: float
    answered: int


class Dataset(TypedDict):
    """A dataset declared on one device: columns and policy, never values."""

    dataset: str
    device: str
    device_name: str
    project: str
    source: str
    columns: list[DatasetColumn]
    rows_approx: int
    bytes_approx: int
    allow_projects: list[str]
    allow_ops: list[str]
    min_parties: int
    privacy: DatasetPrivacy
    error: str | None
    is_online: bool
    updated_at: str


class Condition(TypedDict):
    """One filter on one column; a task's conditions must all hold (AND)."""

    column: str
    op: str
    value: float | bool | str | list[float | bool | str]


class Query(TypedDict):
    """What a computation asks beyond one column (see :mod:`edgefleet.fed.analytics`)."""

    columns: list[str]
    where: list[Condition]
    group_by: str | None
    groups: list[float | bool | str]
    quantiles: list[float]
    epsilon: float | None
    bounds: dict[str, list[Any]]


class Party(TypedDict):
    """One device's part in a federated computation."""

    device: str
    name: str
    status: str
    round: str | None
    reason: str | None


class Computation(TypedDict):
    """A federated computation: state, result, parties."""

    id: str
    project: str
    dataset: str
    op: str
    column: str
    bins: list[float] | None
    query: Query
    epsilon_spent: float
    round: str | None
    devices: list[str] | None
    selector: str | None
    state: str
    result: dict[str, Any] | None
    participants: list[str]
    dropped: list[str]
    parties: list[Party]
    threshold: int
    error: str | None
    created_by: str
    created_at: str
    finished_at: str | None


class Record(TypedDict):
    """One record a workload sent."""

    device: str
    stream: str
    seq: int
    time: str
    id: str | None
    record: dict[str, Any]


class StreamSummary(TypedDict):
    """What the server holds of one device's stream."""

    device: str
    device_name: str | None
    stream: str | None
    records: int
    bytes: int
    last_seq: int
    first_time: str | None
    last_time: str | None
    backlog: int
    backlog_bytes: int
    oldest_backlog: str | None
    accepted_on_device: int
    evicted: int
    rejected: int
    reported_at: str | None
    files: int


class DataSummary(TypedDict):
    """Per device and stream: records held, backlog, evictions."""

    job: str
    items: list[StreamSummary]
    records: int
    backlog: int
    evicted: int


class DataFile(TypedDict):
    """A file a workload handed to its agent (metadata)."""

    id: str
    device: str
    seq: int
    name: str
    size: int
    sha256: str
    time: str
