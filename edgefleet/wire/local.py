"""What the device's owner did on the device itself, as the server learns it.

The agent's local API (``edgefleet agent restart|stop|start``, local apps)
works with no server in reach. Each action is journalled in the state dir and
sent as :class:`~edgefleet.wire.messages.LocalActions` once the server is
back; the server stores each as a device event (once: by ``id``) and answers
with the ids it has, which the agent then forgets.

Owner's local apps are shown to the server as facts (read-only): the server
never receives a way to change or remove them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from edgefleet.wire.base import described

LocalActionKind = Literal["restart", "stop", "start", "app-run", "app-remove"]

LOCAL_APP_PREFIX = "local-"


def local_app_job(name: str) -> str:
    """The job id an owner's local app runs under: its own namespace, never a
    server job's (server job ids never start with ``local-``)."""
    return f"{LOCAL_APP_PREFIX}{name}"


class LocalAction(BaseModel):
    model_config = described("One thing the owner did through the local API.")

    id: str = Field(max_length=64)
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    action: LocalActionKind
    job_id: str = Field(max_length=80)
    service: str | None = Field(None, max_length=80)
    detail: str = Field("", max_length=500)


class LocalAppFact(BaseModel):
    """An owner's local app, as the server sees it (read-only)."""

    name: str
    job_id: str
    services: dict[str, str] = Field(
        default_factory=dict, description="service -> state (running, exited, ...)"
    )
