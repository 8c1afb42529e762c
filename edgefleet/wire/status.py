"""Job and service states, as the agent reports them and the API shows them.

Per device (SPEC): ``pending`` -> ``pulling`` -> ``starting`` -> ``running``,
then ``exited`` / ``failed`` / ``removed``. A service carries the same words.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from edgefleet.wire.base import described

DeviceJobState = Literal["pending", "pulling", "starting", "running", "exited", "failed", "removed"]
HealthState = Literal["starting", "healthy", "unhealthy"]

DEVICE_JOB_STATES: tuple[str, ...] = (
    "pending",
    "pulling",
    "starting",
    "running",
    "exited",
    "failed",
    "removed",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class ServiceStatus(BaseModel):
    state: DeviceJobState = "pending"
    restarts: int = 0
    exit_code: int | None = None
    image: str | None = None
    health: HealthState | None = None
    error: str | None = None
    started_at: datetime | None = None
    held_locally: bool = Field(
        False, description="stopped by the device's owner on the device (agent stop): kept stopped"
    )
    progress: str | None = Field(
        None, description="a change under way, e.g. 'building: STEP 2/4: COPY …' (issue 21)"
    )


class JobStatus(BaseModel):
    model_config = described(
        "How one job stands on one device.\n\n"
        "``version`` is what actually runs; ``target_version`` what the device was\n"
        "asked to run. They differ while an upgrade is in progress, or after one\n"
        "failed (then ``error`` says why and the old version keeps running)."
    )

    job_id: str
    state: DeviceJobState = "pending"
    version: str | None = None
    target_version: str | None = None
    error: str | None = None
    services: dict[str, ServiceStatus] = Field(default_factory=dict)
    time: datetime = Field(default_factory=utcnow)
    waiting: str | None = Field(
        None, description="why a change is held back, e.g. an update lock held by the workload"
    )
