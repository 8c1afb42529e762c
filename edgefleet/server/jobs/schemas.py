from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from edgefleet.server.db.base import utcnow
from edgefleet.server.rollouts.schemas import RolloutIn, RolloutOut
from edgefleet.server.schedules.schemas import RunOut, ScheduleOut, schedule_shorthand
from edgefleet.server.schemas import Input, Output, Timestamp, selector_text
from edgefleet.wire.schedule import Schedule

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _env(value: dict[str, Any]) -> dict[str, str]:
    import re

    result = {}
    for key, item in value.items():
        if not re.match(_ENV_NAME, key):
            raise ValueError(f"{key!r} is not a valid environment variable name")
        if isinstance(item, (dict, list)):
            raise ValueError(f"{key}: value must be a string, number or boolean")
        result[key] = (
            "" if item is None else (str(item).lower() if isinstance(item, bool) else str(item))
        )
    return result


class JobIn(Input):
    application: str = Field(description="application id or name")
    version: str | None = Field(None, description="default: the latest version")
    project: str | None = Field(None, description="default: the application's project")
    name: str = Field("", max_length=128)
    devices: list[str] | None = Field(None, description="device ids or names")
    selector: dict[str, str] | str | None = Field(
        None, description='labels {"site": "a"} or a selector string "site=a,tier!=test"'
    )
    environment: dict[str, Any] = Field(default_factory=dict)
    start: Timestamp | None = None
    end: Timestamp | None = None
    reservation: str | None = Field(
        None,
        max_length=64,
        description="a reservation of the job's project: the job runs only on its devices "
        "(its devices by default), only inside its window",
    )
    rollout: RolloutIn | None = Field(
        None, description="stage version changes batch by batch (default: all at once)"
    )
    schedule: Schedule | None = Field(
        None,
        description='periodic job: {"cron": "*/5 * * * *", "timezone": "Europe/Paris", '
        '"overlap": "skip|queue"}; its one-shot services (restart "no") run at those times',
    )

    @model_validator(mode="before")
    @classmethod
    def _schedule_shorthand(cls, data: Any) -> Any:
        return schedule_shorthand(data)

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _env(value)

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: dict[str, str] | str | None) -> str | None:
        return None if value is None else selector_text(value)

    @model_validator(mode="after")
    def _targets_and_window(self) -> JobIn:
        if (self.devices is None) == (self.selector is None) and not (
            self.reservation and self.devices is None
        ):
            raise ValueError(
                "give either 'devices' (a list of ids) or 'selector' (labels), not both"
            )
        if self.devices is not None and not self.devices:
            raise ValueError("'devices' must not be empty")
        if self.start and self.end and self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        if self.end and self.end <= utcnow():
            raise ValueError("'end' is in the past")
        return self


class JobPatch(Input):
    version: str | None = None
    environment: dict[str, Any] | None = None
    end: Timestamp | None = None
    rollout: RolloutIn | None = None
    schedule: Schedule | None = Field(None, description="a new schedule for a periodic job")

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else _env(value)


class ServiceStatusOut(Output):
    state: str
    restarts: int = 0
    exit_code: int | None = None
    image: str | None = None
    health: str | None = None
    error: str | None = None
    held_locally: bool = Field(
        False, description="stopped by the device's owner on the device; kept stopped (issue 21)"
    )
    progress: str | None = Field(
        None, description="a change under way, e.g. the image build's current step (issue 21)"
    )


class JobDeviceOut(Output):
    device: str
    name: str
    state: str
    error: str | None = None
    eligible: bool = True
    assigned: bool = True
    version: str | None = None
    target_version: str | None = None
    running_version: str | None = Field(
        None, description="the version that actually runs there (the last good one after a failure)"
    )
    waiting: str | None = Field(None, description="why a change waits, e.g. an update lock")
    services: dict[str, ServiceStatusOut] = Field(default_factory=dict)
    updated_at: Timestamp | None = None
    last_run: RunOut | None = Field(None, description="a periodic job: the newest run here")
    next_run: Timestamp | None = Field(None, description="a periodic job: the next fire time")


class JobOut(Output):
    id: str
    name: str
    application: str
    application_id: str
    version: str
    project: str
    project_id: str
    state: str
    error: str | None = None
    targets: list[str] | None = None
    selector: str | None = None
    environment: dict[str, str]
    start: Timestamp | None = None
    end: Timestamp | None = None
    reservation: str | None = Field(None, description="the reservation the job runs in")
    created_at: Timestamp
    updated_at: Timestamp | None = None
    created_by: str
    services: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(
        default_factory=dict, description="devices per state (same as device_counts)"
    )
    device_counts: dict[str, int] = Field(default_factory=dict, description="devices per state")
    devices: list[JobDeviceOut] = Field(
        default_factory=list,
        description="the first 100 devices; GET /jobs/{id}/devices pages through all",
    )
    devices_next: str | None = Field(
        None, description="cursor for GET /jobs/{id}/devices when there are more than 100"
    )
    rollout: RolloutOut | None = Field(None, description="staged rollout settings and progress")
    schedule: ScheduleOut | None = Field(None, description="a periodic job's schedule")
