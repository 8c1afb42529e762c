"""What the server asks a device to run: one :class:`JobAssignment` per job."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from edgefleet.spec.model import AppSpec


class JobAssignment(BaseModel):
    """One job on one device, fully resolved by the server.

    ``spec`` is already interpolated with the job's environment and
    ``environment`` already merged into every service, so the agent never
    needs the job record or the raw Compose text. ``end`` travels with it so a
    device that is offline when the job ends still removes the workloads.
    """

    job_id: str
    project_id: str
    application: str
    version: str
    spec: AppSpec
    end: datetime | None = None
    registry_auth: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="registry host -> {username, password}"
    )
