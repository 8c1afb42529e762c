"""A job's ``rollout`` block (SPEC pinned) and the rollout's progress as shown."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from edgefleet.server.rollouts.machine import Settings
from edgefleet.server.schemas import Input, Output, Timestamp

DAY = 86400.0
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _seconds(value: object) -> object:
    """Durations as numbers of seconds, or Nomad-style strings: "500ms", "30s", "5m", "1h"."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    for unit in sorted(UNITS, key=len, reverse=True):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * UNITS[unit]
    return text  # a plain number in a string, or an error for the float check


Seconds = Annotated[float, BeforeValidator(_seconds)]


class RolloutIn(Input):
    """How a version change reaches the job's devices (Nomad's ``update`` block)."""

    max_parallel: int = Field(1, ge=1, le=100_000, description="devices per batch")
    canaries: int = Field(0, ge=0, le=100_000, description="size of the first batch (0: none)")
    min_healthy_time: Seconds = Field(
        10.0,
        ge=0,
        le=DAY,
        description='seconds a batch must run healthy before the next ("30s", "5m" too)',
    )
    failure_threshold: int | float = Field(
        1,
        gt=0,
        le=100_000,
        description="failed devices that stop the rollout; below 1, a fraction of its devices",
    )
    auto_revert: bool = Field(False, description="revert moved devices instead of pausing")
    healthy_deadline: Seconds = Field(
        1800.0,
        ge=0,
        le=7 * DAY,
        description="seconds a moved device has to become healthy, else it counts as failed "
        "(0: no deadline)",
    )
    lock_timeout: Seconds = Field(
        600.0,
        ge=0,
        le=7 * DAY,
        description="seconds an upgrade or restart waits for a held update lock",
    )

    def machine(self) -> Settings:
        return Settings(
            max_parallel=self.max_parallel,
            canaries=self.canaries,
            min_healthy_time=self.min_healthy_time,
            failure_threshold=self.failure_threshold,
            auto_revert=self.auto_revert,
            healthy_deadline=self.healthy_deadline,
        )


class BatchDeviceOut(Output):
    device: str
    name: str = ""
    state: str = Field(description="waiting, moved, healthy, failed or reverted")
    version: str | None = Field(None, description="the version it actually runs")


class BatchOut(Output):
    index: int
    state: str = Field(description="waiting, in progress, done or reverted")
    devices: list[BatchDeviceOut]


class RolloutOut(Output):
    max_parallel: int
    canaries: int
    min_healthy_time: float
    failure_threshold: int | float
    auto_revert: bool
    healthy_deadline: float
    lock_timeout: float
    state: str = Field(description="idle, rolling, paused, done, reverted or aborted")
    from_version: str | None = None
    to_version: str | None = None
    kind: str = Field(
        "version", description="what is rolling: version, or configuration (secrets/variables)"
    )
    changes: list[str] = Field(
        default_factory=list,
        description="the configuration changes rolling (or reverted), e.g. 'secret db_password "
        "version 2 -> 3'",
    )
    holding_previous_configuration: bool = Field(
        False,
        description="after a revert or abort of a configuration change: the job's devices stay "
        "on the previous secrets/variables until its next change completes a rollout",
    )
    batch: int | None = Field(None, description="the batch in progress, 1-based")
    batch_count: int = 0
    batches: list[BatchOut] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list, description="device ids")
    reason: str | None = Field(None, description="why it paused, reverted or was aborted")
    locks_overridden_at: Timestamp | None = None
    updated_at: Timestamp | None = None
