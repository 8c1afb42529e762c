"""API shapes of project volumes (issue 21)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from edgefleet.server.schemas import Input, Output

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class VolumeIn(Input):
    name: str = Field(
        pattern=NAME, description="letters, digits, '_', '.', '-' (the key Compose files mount)"
    )


class VolumeOut(Output):
    id: str
    name: str
    project: str
    project_id: str
    engine_name: str = Field(description="the volume's name on each device")
    created_by: str
    created_at: datetime


class VolumeDevice(Output):
    device: str
    device_name: str
    state: str = Field(description="present|absent|removed|in use|offline|unreachable")
    size: int | None = Field(None, description="bytes of the files in it")
    error: str | None = None


class VolumeDetail(VolumeOut):
    devices: list[VolumeDevice]
