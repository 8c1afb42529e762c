from __future__ import annotations

from pydantic import Field

from edgefleet.server.schemas import Input, Labels, Output, Timestamp


class KeyIn(Input):
    project: str = Field("default", description="project id or name")
    name: str = Field("", max_length=128)
    labels: Labels = Field(default_factory=dict, description="given to every device it enrolls")
    expires_at: Timestamp | None = None
    expires_in: int | None = Field(None, gt=0, description="seconds from now")
    max_uses: int | None = Field(None, gt=0, description="default: unlimited")


class KeyOut(Output):
    id: str
    name: str
    project: str
    project_id: str
    prefix: str
    labels: dict[str, str]
    created_at: Timestamp
    created_by: str
    expires_at: Timestamp | None = None
    max_uses: int | None = None
    uses: int = 0
    revoked_at: Timestamp | None = None


class KeyCreated(KeyOut):
    key: str = Field(description="the secret: shown once")
    command: str = Field(description="what to run on a device to enroll it")
