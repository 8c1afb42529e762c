"""API models of datasets and computations. Nothing here can hold a row or one
device's value: datasets are schema and rounded size, computations the released
aggregate only."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from edgefleet.fed.messages import Op
from edgefleet.labels import LabelError, Selector, parse_selector
from edgefleet.server.schemas import Input, Output, Timestamp
from edgefleet.wire.messages import DatasetColumn

State = Literal["running", "done", "failed", "refused"]


class ComputationIn(Input):
    project: str | None = Field(
        None, description="project on whose behalf (id or name); default: the devices' project"
    )
    dataset: str = Field(min_length=1, max_length=128)
    devices: list[str] | None = Field(None, max_length=10_000, description="device ids or names")
    selector: dict[str, str] | str | None = Field(
        None, description='labels {"site": "a"} or a selector string "site=a,tier!=test"'
    )
    op: Op
    column: str = Field(min_length=1, max_length=256)
    bins: list[float] | None = Field(
        None, max_length=1001, description="histogram bin edges, increasing (numpy style)"
    )
    round_timeout: float = Field(
        30.0, gt=0, le=600, description="seconds each round waits for devices before dropping them"
    )

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: dict[str, str] | str | None) -> str | None:
        if value is None:
            return None
        try:
            parsed = (
                Selector.from_labels(value) if isinstance(value, dict) else parse_selector(value)
            )
        except LabelError as exc:
            raise ValueError(str(exc)) from exc
        return str(parsed)

    @model_validator(mode="after")
    def _shape(self) -> ComputationIn:
        if (self.devices is None) == (self.selector is None):
            raise ValueError("give either 'devices' (a list of ids) or 'selector' (labels)")
        if self.devices is not None and not self.devices:
            raise ValueError("'devices' must not be empty")
        if self.op == "histogram":
            edges = self.bins or []
            if len(edges) < 2 or not all(math.isfinite(e) for e in edges):
                raise ValueError("a histogram needs 'bins': at least two finite edges")
            if any(b <= a for a, b in pairwise(edges)):
                raise ValueError("'bins' must increase strictly")
        elif self.bins is not None:
            raise ValueError(f"'bins' is only for histograms, not {self.op}")
        return self


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
    error: str | None = None
    is_online: bool
    updated_at: Timestamp
