from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from edgefleet.labels import LabelError, check_key, check_value
from edgefleet.server.schemas import Input, Name, Output, Timestamp
from edgefleet.spec.policy import DevicePolicy
from edgefleet.wire.local import LocalAppFact
from edgefleet.wire.messages import Peripheral, Resources
from edgefleet.wire.upgrade import UpgradeReport


class DeviceOut(Output):
    id: str
    name: str
    project: str
    project_id: str
    labels: dict[str, str]
    metadata: dict[str, Any]
    peripherals: list[Peripheral]
    resources: Resources
    runtimes: list[str]
    policy: DevicePolicy | None = Field(
        None, description="what the device's owner allows, as its agent reports it"
    )
    agent_version: str
    agent_upgrade: UpgradeReport | None = Field(
        None, description="the agent's last over-the-air upgrade: healthy, or rolled back and why"
    )
    is_online: bool
    is_ready: bool
    not_ready_reason: str | None = Field(
        None, description="why not ready: offline, a declared peripheral missing, applying..."
    )
    lent: bool = Field(False, description="lent to your project: you see only a guest's view")
    loan: str | None = Field(None, description="the loan's id, for a lent device")
    last_seen: Timestamp | None = None
    created_at: Timestamp
    desired_generation: int = 0
    applied_generation: int = 0
    replica: str | None = Field(None, description="the server replica holding its connection")
    local_apps: list[LocalAppFact] = Field(
        default_factory=list,
        description="the owner's own apps on the device (agent apps run): shown, never managed here",
    )


class DevicePatch(Input):
    """JSON merge patch (RFC 7396) for ``labels`` and ``metadata``: a key set to
    ``null`` is removed, others are set; absent keys are left alone."""

    name: Name | None = None
    labels: dict[str, str | None] | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str | None] | None) -> dict[str, str | None] | None:
        if value is None:
            return None
        try:
            for key, item in value.items():
                check_key(key)
                if item is not None:
                    check_value(key, item)
        except LabelError as exc:
            raise ValueError(str(exc)) from exc
        return value


class EnrollIn(Input):
    provisioning_key: str = Field(min_length=1, max_length=512)
    name: Name | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    public_key: str | None = Field(None, max_length=512)
    facts: dict[str, Any] = Field(default_factory=dict)


class EnrollOut(Output):
    device_id: str
    name: str
    project: str
    project_id: str
    credential: str = Field(description="the device's secret: the agent stores it, mode 0600")
    heartbeat_interval: float
