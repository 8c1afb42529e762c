from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from edgefleet.server.schemas import selector_text
from edgefleet.wire.upgrade import VERSION_MAX, VERSION_PATTERN


class ReleaseOut(BaseModel):
    id: str
    version: str
    sha256: str
    size: int
    created_at: datetime
    created_by: str


class UpgradeIn(BaseModel):
    """``POST /devices/upgrade-agent``: which devices, to which version, how fast."""

    model_config = {"extra": "forbid"}

    version: str = Field(pattern=VERSION_PATTERN, max_length=VERSION_MAX)
    devices: list[str] | None = Field(None, min_length=1, max_length=10_000)
    selector: dict[str, str] | str | None = Field(
        None, description='labels {"site": "a"} or a selector string "site=a,tier!=test"'
    )
    project: str | None = Field(
        None, description="with a selector: the project whose devices it picks (default: default)"
    )
    max_parallel: int = Field(1, ge=1, le=1000, description="devices upgraded at once (a batch)")
    deadline: float | None = Field(
        None, gt=0, le=3600, description="seconds a device has to come back healthy"
    )

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: dict[str, str] | str | None) -> str | None:
        return None if value is None else selector_text(value)

    @model_validator(mode="after")
    def _one_target(self) -> UpgradeIn:
        if (self.devices is None) == (self.selector is None):
            raise ValueError("give exactly one of devices or selector")
        return self


DeviceState = Literal["pending", "upgrading", "healthy", "failed", "skipped"]


class UpgradeDeviceOut(BaseModel):
    device: str
    name: str
    state: DeviceState
    error: str = ""
    batch: int


class UpgradeOut(BaseModel):
    id: str
    project: str
    version: str
    state: Literal["running", "done", "failed"]
    max_parallel: int
    deadline: float
    error: str
    device_counts: dict[str, int]
    devices: list[UpgradeDeviceOut]
    created_at: datetime
    created_by: str
