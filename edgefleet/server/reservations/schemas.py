from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edgefleet.labels import LabelError, check_key
from edgefleet.server.db.base import utcnow
from edgefleet.server.schemas import Input, Output, Timestamp, selector_text


class ReservationIn(Input):
    project: str = Field(min_length=1, max_length=64, description="the booking project")
    devices: list[str] | None = Field(None, max_length=10000, description="device ids or names")
    selector: dict[str, str] | str | None = Field(
        None, description='labels {"site": "a"} or a selector string "site=a,tier!=test"'
    )
    count: int | None = Field(None, ge=1, le=10000, description="book this many of the matches")
    spread: str | None = Field(None, description="spread the picks across this label's values")
    start: Timestamp
    end: Timestamp
    exclusive: bool = Field(True, description="false: shared with other shared bookings")
    dry_run: bool = Field(False, description="only show what would be booked, and conflicts")

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: dict[str, str] | str | None) -> str | None:
        return None if value is None else selector_text(value, max_length=1024)

    @field_validator("spread")
    @classmethod
    def _spread(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_key(value)
        except LabelError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or any(not d or len(d) > 128 for d in value)):
            raise ValueError("give device ids or names, each 1-128 characters")
        return value

    @field_validator("end")
    @classmethod
    def _end(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError("must be after 'start'")
        if value <= utcnow():
            raise ValueError("is in the past")
        return value

    @model_validator(mode="after")
    def _targets(self) -> ReservationIn:
        if (self.devices is None) == (self.selector is None):
            raise ValueError("give either 'devices' (ids or names) or 'selector' (labels)")
        return self


class ReservationPatch(Input):
    """Extend or shorten: a new ``start`` and/or ``end``; conflicts are checked again."""

    start: Timestamp | None = None
    end: Timestamp | None = None

    @field_validator("end")
    @classmethod
    def _end(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if value is not None and start is not None and value <= start:
            raise ValueError("must be after 'start'")
        return value

    @model_validator(mode="after")
    def _something(self) -> ReservationPatch:
        if self.start is None and self.end is None:
            raise ValueError("give 'start' and/or 'end'")
        return self


class ConflictOut(Output):
    device: str = Field(description="the device id ('' for the booking as a whole)")
    reason: str


class ReservationOut(Output):
    id: str
    project: str
    project_id: str
    devices: list[str]
    device_names: list[str] = Field(default_factory=list)
    selector: str | None = None
    count: int | None = None
    spread: str | None = None
    start: Timestamp
    end: Timestamp
    exclusive: bool
    state: Literal["upcoming", "active", "ended"]
    created_by: str
    created_at: Timestamp


class DryRunOut(Output):
    devices: list[str]
    conflicts: list[ConflictOut]
    skipped: list[ConflictOut] = Field(
        default_factory=list, description="matches passed over (with why) when a count is given"
    )
