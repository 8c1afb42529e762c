from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edgefleet.labels import LabelError, check_key
from edgefleet.server.schemas import Input, Output, Timestamp

_Items = list[str]


class LoanRights(BaseModel):
    """The part of the device's policy guest jobs get: each field can only
    narrow what the device's own agent allows (:func:`.rights.narrow`).
    Deny by default, like the device policy itself."""

    model_config = ConfigDict(extra="forbid")

    process: bool = False
    published_ports: bool = False
    privileged: bool = False
    capabilities: _Items = Field(default_factory=list, max_length=64)
    host_paths: _Items = Field(default_factory=list, max_length=64)
    external_volumes: _Items = Field(default_factory=list, max_length=64)
    peripherals: _Items = Field(default_factory=list, max_length=64)
    peripheral_kinds: _Items = Field(default_factory=list, max_length=64)
    max_memory: int | None = Field(
        None, gt=0, description="bytes; every guest service must set mem_limit at most this"
    )
    max_pids: int | None = Field(
        None, gt=0, description="every guest service must set pids_limit at most this"
    )

    @field_validator(
        "capabilities", "host_paths", "external_volumes", "peripherals", "peripheral_kinds"
    )
    @classmethod
    def _short(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item or len(item) > 256:
                raise ValueError("each entry must be 1-256 characters")
        return value


class LoanIn(Input):
    project: str = Field(
        min_length=1, max_length=64, description='the guest project (id or name), or "*" for all'
    )
    rights: LoanRights = Field(default_factory=LoanRights)
    expose_labels: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="label keys the guest sees (and may select on); others stay hidden",
    )
    time_share: float = Field(
        1.0, gt=0, le=1, description="share of the window the guest may hold in reservations"
    )
    share_window_hours: int = Field(168, ge=1, le=24 * 366, description="the rolling window")

    @field_validator("expose_labels")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        try:
            return [check_key(k) for k in value]
        except LabelError as exc:
            raise ValueError(str(exc)) from exc


class LoanOut(Output):
    id: str
    device: str
    device_name: str
    project: str = Field(description='the guest project\'s name, or "*" (everyone)')
    project_id: str | None = None
    rights: LoanRights
    expose_labels: list[str]
    time_share: float
    share_window_hours: int
    created_at: Timestamp
    created_by: str
