"""API shapes of personal instances (issue 21)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgefleet.server.schemas import Input, Output


class LaunchableIn(Input):
    launchable: bool = Field(True, description="members with the developer role may launch it")
    idle_timeout: int = Field(
        3600, ge=10, le=30 * 86400, description="seconds without a proxied request before it stops"
    )


class LaunchableOut(Output):
    application: str
    application_id: str
    launchable: bool
    idle_timeout: int | None


class InstanceIn(Input):
    app: str = Field(min_length=1, max_length=64, description="application id or name")
    version: str | None = Field(None, max_length=64, description="default: the latest version")
    project: str | None = Field(None, max_length=64, description="when the app name is ambiguous")
    device: str | None = Field(None, max_length=128, description="device id or name")
    selector: dict[str, str] | str | None = Field(
        None, description="labels to pick one device from (the first online match)"
    )

    @model_validator(mode="after")
    def _one_target(self) -> InstanceIn:
        if self.device is not None and self.selector is not None:
            raise ValueError("give 'device' or 'selector', not both")
        return self


class ShareIn(Input):
    user: str = Field(min_length=1, max_length=64, description="user id or name")


class InstanceDevice(BaseModel):
    device: str
    device_name: str
    state: str
    error: str | None = None


class InstanceOut(Output):
    id: str
    app: str
    application_id: str
    version: str
    project: str
    project_id: str
    job: str
    owner: str
    shared_with: list[str]
    state: str
    stopped_reason: str | None
    idle_timeout: int
    last_access: datetime
    created_at: datetime
    devices: list[InstanceDevice]
    urls: list[str] = Field(description="proxy paths of the instance's declared ports")


# -- saving an instance as a new application version (issue 21, part D) --------------

SAVE_AS_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}:[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"


class SaveIn(Input):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    service: str = Field(min_length=1, max_length=64, description="the service to commit")
    as_: str = Field(
        alias="as",
        pattern=SAVE_AS_PATTERN,
        description="APP:VERSION: a new version of an app of the instance's project (or a new app)",
    )
    registry: str | None = Field(
        None, max_length=255, description="registry host; default: the project's only registry"
    )


class SaveProgress(BaseModel):
    layers_done: int = 0
    layers_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0


class SaveTarget(Output):
    """What a save is of and where it goes, fixed when it starts."""

    id: str
    instance: str
    service: str
    app: str
    version: str
    registry: str
    device: str


class SaveOut(SaveTarget):
    state: str = Field(description="pending, pushing, recording, done or failed")
    status: str = Field(description="the engine's last progress line")
    progress: SaveProgress
    image: str | None = Field(description="the pushed reference host/repo@sha256:…, once done")
    error: str | None
    created_at: datetime
    finished_at: datetime | None
