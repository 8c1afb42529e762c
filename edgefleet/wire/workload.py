"""What the server asks a device to run: one :class:`JobAssignment` per job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from edgefleet.spec.model import AppSpec
from edgefleet.wire.schedule import ScheduledServices


class DeviceContext(BaseModel):
    """The device as its operator describes it on the server (name, labels,
    metadata), for workloads to read at ``EDGEFLEET_CONTEXT_URL``.

    It rides on each :class:`JobAssignment` rather than on the desired-state
    message: control messages refuse unknown fields, an assignment ignores
    them, so an older agent still takes a newer server's desired state. The
    agent keeps it on disk with the desired state and answers from there with
    no server in reach. It is not part of a job's revision: changing a label
    never restarts a workload."""

    name: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class SealedSecret(BaseModel):
    """A project secret as one device receives it: sealed to the device's key
    (:mod:`edgefleet.wire.sealed`), so ``desired.json`` holds only ciphertext.
    A fresh token is made at every render; the ``version`` (also in the spec,
    on each service that uses it) is what changes a revision."""

    version: int
    sealed: str


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
    device: DeviceContext | None = Field(
        None, description="the device's name, labels and metadata; none from an older server"
    )
    periodic: ScheduledServices | None = Field(
        None, description="a periodic job: its schedule and the one-shot services each run starts"
    )
    secrets: dict[str, SealedSecret] = Field(
        default_factory=dict, description="project secret name -> its value sealed to the device"
    )
    lock_timeout: float | None = Field(
        None, description="seconds an upgrade or restart waits for a held update lock"
    )
    locks_overridden_at: datetime | None = Field(
        None, description="an operator overrode update locks: locks taken before this are ignored"
    )
