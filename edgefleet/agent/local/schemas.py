"""The local API's shapes: what ``edgefleet agent status|jobs|...`` reads.

Every answer is one of these models (and the OpenAPI document is built from
their JSON schemas), so the CLI and the owner's own scripts parse a stable,
typed shape rather than the agent's internals.

A model described in that document says so with ``described`` (wire/base.py),
not a docstring: ``-OO`` strips docstrings, and the document must not lose its
descriptions under it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from edgefleet.wire.base import described
from edgefleet.wire.local import LocalAction
from edgefleet.wire.status import JobStatus


class DeviceInfo(BaseModel):
    id: str
    name: str
    project: str


class ConnectionInfo(BaseModel):
    connected: bool
    server: str | None = None
    servers: list[str] = Field(default_factory=list)


class LocalStatus(BaseModel):
    model_config = described(
        "``GET /status``: who this device is and how it stands, with or without a server."
    )

    device: DeviceInfo
    connection: ConnectionInfo
    applied_generation: int
    runtime_healthy: bool
    runtimes: list[str]
    jobs: int
    local_apps: int
    actions_unreported: int
    agent_version: str


class LocalService(BaseModel):
    name: str
    state: str
    revision: str | None = None
    held_locally: bool = False
    restarts: int = 0
    exit_code: int | None = None
    error: str | None = None


class LocalJob(BaseModel):
    model_config = described("One job (or local app) on the device, with its services.")

    id: str
    application: str
    local_app: bool
    version: str
    revision: str
    state: str
    error: str | None = None
    waiting: str | None = None
    services: list[LocalService] = Field(default_factory=list)


class JobList(BaseModel):
    items: list[LocalJob]


class ActionRequest(BaseModel):
    """``POST /jobs/{job}/services/{service}/{action}`` takes no body; this is its answer."""


class ActionDone(BaseModel):
    action: LocalAction
    status: JobStatus | None = None


class DesiredService(BaseModel):
    image: str | None = None
    runtime: str
    secrets: list[str] = Field(default_factory=list, description="names only: values are sealed")


class DesiredJob(BaseModel):
    id: str
    application: str
    version: str
    revision: str
    local_app: bool
    services: dict[str, DesiredService]
    sealed_secrets: list[str] = Field(
        default_factory=list, description="secret names; their values stay sealed, never shown"
    )


class LocalDesired(BaseModel):
    model_config = described(
        "``GET /desired``: what the device runs per its last desired state and the\n"
        "owner's local apps; secrets are named, never unsealed."
    )

    generation: int
    jobs: list[DesiredJob]


class StreamBacklog(BaseModel):
    job: str
    stream: str
    pending: int
    pending_bytes: int
    accepted: int
    uploaded: int
    evicted: int
    rejected: int


class Backlog(BaseModel):
    model_config = described(
        "``GET /backlog``: collected data waiting on the device for the server."
    )

    streams: list[StreamBacklog]
    files_pending: int


class AppRun(BaseModel):
    model_config = described("``POST /apps``: run (or replace) an owner's local app.")

    name: str = Field(max_length=64)
    compose: str = Field(description="the Compose file's text")
    version: str = Field("local", max_length=64)


class LocalApp(BaseModel):
    name: str
    job_id: str
    version: str
    services: dict[str, str] = Field(default_factory=dict, description="service -> state")


class AppList(BaseModel):
    items: list[LocalApp]


class ErrorBody(BaseModel):
    error: str
    status: int


Method = Literal["get", "post", "delete"]
Schema = dict[str, Any]
