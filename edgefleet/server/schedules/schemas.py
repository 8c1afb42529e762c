"""API shapes of periodic jobs: a job's schedule as shown, and its runs."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from edgefleet.server.schemas import Output, Timestamp


class ScheduleOut(Output):
    """A job's ``schedule`` with the server's view of its next fire time (each
    device fires from its own clock; this is the same computation)."""

    cron: str
    timezone: str
    overlap: str
    next: Timestamp | None = Field(None, description="the next fire time (UTC)")


class RunOut(Output):
    """One fire of a periodic job on one device."""

    id: str = Field(description="the device's id for this run")
    device: str
    device_name: str
    scheduled: Timestamp = Field(description="the fire time it ran for")
    started: Timestamp | None = Field(None, description="when its containers were running")
    finished: Timestamp | None = Field(None, description="when the last one had exited")
    exit_code: int | None = Field(None, description="first non-zero exit code, else 0")
    state: str = Field(description="ok | failed | skipped")
    error: str | None = None
    services: dict[str, int | None] = Field(default_factory=dict, description="exit code each")
    received_at: Timestamp


def schedule_shorthand(data: Any) -> Any:
    """``{"schedule": "<cron>", "timezone": "<zone>"}`` at the top level of a
    job is taken as ``{"schedule": {"cron", "timezone"}}``."""
    if isinstance(data, dict) and isinstance(data.get("schedule"), str) and "timezone" in data:
        data = dict(data)
        data["schedule"] = {"cron": data["schedule"], "timezone": data.pop("timezone")}
    return data
