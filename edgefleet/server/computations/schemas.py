"""API models of datasets and computations. Nothing here can hold a row or one
device's value: datasets are schema and rounded size, computations the released
aggregate only."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from edgefleet.fed.analytics import query
from edgefleet.fed.analytics.layout import check
from edgefleet.fed.messages import Op, Task
from edgefleet.server.schemas import Input, Output, Timestamp, selector_text
from edgefleet.wire.messages import DatasetColumn, DatasetPrivacy

State = Literal["running", "done", "failed", "refused"]


class Query(Input):
    """What a computation asks beyond one column (see :mod:`edgefleet.fed.analytics`)."""

    columns: list[query.ColumnName] = Field(
        default_factory=list,
        max_length=query.MAX_COLUMNS,
        description="several columns at once; covariance: the variables; ols: the X columns",
    )
    where: list[query.Condition] = Field(
        default_factory=list,
        max_length=query.MAX_CONDITIONS,
        description='rows to use, all must hold: [{"column", "op": "==|!=|<|<=|>|>=|in|not_in", '
        '"value"}]',
    )
    group_by: query.ColumnName | None = Field(None, description="a categorical column")
    groups: list[query.Scalar] = Field(
        default_factory=list, max_length=query.MAX_GROUPS, description="with group_by: the groups"
    )
    quantiles: list[float] = Field(
        default_factory=list,
        max_length=query.MAX_QUANTILES,
        description="quantile: fractions in (0, 1)",
    )
    epsilon: float | None = Field(
        None, gt=0, le=10, description="differential privacy: noise added on the devices"
    )
    bounds: dict[query.ColumnName, tuple[float, float]] = Field(
        default_factory=dict,
        max_length=query.MAX_COLUMNS + 1,
        description="with epsilon: values are clipped to [lo, hi] per column",
    )


class ComputationIn(Query):
    project: str | None = Field(
        None, description="project on whose behalf (id or name); default: the devices' project"
    )
    dataset: str = Field(min_length=1, max_length=128)
    devices: list[str] | None = Field(None, max_length=10_000, description="device ids or names")
    selector: dict[str, str] | str | None = Field(
        None, description='labels {"site": "a"} or a selector string "site=a,tier!=test"'
    )
    op: Op
    column: str | None = Field(
        None, min_length=1, max_length=256, description="the column (ols: y); or use columns"
    )
    bins: list[float] | None = Field(
        None, max_length=1001, description="histogram/quantile bin edges, increasing (numpy style)"
    )
    round_timeout: float = Field(
        30.0, gt=0, le=600, description="seconds each round waits for devices before dropping them"
    )

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: dict[str, str] | str | None) -> str | None:
        return None if value is None else selector_text(value)

    @model_validator(mode="after")
    def _shape(self) -> ComputationIn:
        if (self.devices is None) == (self.selector is None):
            raise ValueError("give either 'devices' (a list of ids) or 'selector' (labels)")
        if self.devices is not None and not self.devices:
            raise ValueError("'devices' must not be empty")
        if self.op in ("histogram", "quantile"):
            edges = self.bins or []
            if len(edges) < 2 or not all(math.isfinite(e) for e in edges):
                raise ValueError(f"a {self.op} needs 'bins': at least two finite edges")
            if any(b <= a for a, b in pairwise(edges)):
                raise ValueError("'bins' must increase strictly")
        elif self.bins is not None:
            raise ValueError(f"'bins' is only for histograms and quantiles, not {self.op}")
        if self.column is None and (self.op == "ols" or not self.columns):
            raise ValueError("give 'column' (ols: the y column) or 'columns'")
        return self

    def task(self, project: str, project_id: str, requested_by: str, min_parties: int) -> Task:
        """The task devices receive; ValueError ``"<field>: why"`` if it is impossible."""
        column, columns = self.column, list(self.columns)
        if column is None:
            column, columns = columns[0], columns[1:]
        task = Task(
            project=project,
            project_id=project_id,
            dataset=self.dataset,
            op=self.op,
            column=column,
            bins=self.bins,
            requested_by=requested_by,
            columns=columns,
            where=self.where,
            group_by=self.group_by,
            groups=self.groups,
            quantiles=self.quantiles,
            epsilon=self.epsilon,
            bounds=self.bounds,
            min_group_parties=min_parties if self.group_by is not None else 0,
        )
        check(task)
        return task

    def query(self) -> dict[str, Any]:
        """The stored audit form of the fields beyond one column (JSON)."""
        return Query.model_validate(self.model_dump(include=set(Query.model_fields))).model_dump(
            mode="json", exclude_defaults=True
        )


class PartyOut(Output):
    device: str
    name: str
    status: str = Field(
        description="invited, included (its data is in the result), dropped, declined"
    )
    round: str | None = Field(None, description="the round it stopped answering in")
    reason: str | None = None


class ComputationOut(Output):
    id: str
    project: str
    dataset: str
    op: Op
    column: str
    bins: list[float] | None = None
    query: Query = Field(default_factory=Query, description="columns, where, groups, epsilon")
    epsilon_spent: float = Field(0.0, description="differential privacy spent by the result")
    round: str | None = Field(None, description="the round in progress (running here)")
    devices: list[str] | None = Field(None, description="the devices asked for")
    selector: str | None = None
    state: State
    result: dict[str, Any] | None = Field(
        None, description="the released aggregate: op, n, value (or counts and edges)"
    )
    participants: list[str] = Field(
        default_factory=list, description="devices whose data is in the result"
    )
    dropped: list[str] = Field(
        default_factory=list, description="invited devices whose data is not in the result"
    )
    parties: list[PartyOut] = Field(default_factory=list)
    threshold: int
    error: str | None = None
    created_by: str
    created_at: Timestamp
    finished_at: Timestamp | None = None


class DatasetOut(Output):
    """One dataset on one device."""

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
    privacy: DatasetPrivacy = Field(default_factory=DatasetPrivacy)
    error: str | None = None
    is_online: bool
    updated_at: Timestamp
