"""API shapes of alert rules, webhooks and alerts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edgefleet.server.schemas import Input, Output, Timestamp

Kind = Literal["device_offline", "job_failed", "disk_above", "backlog_above"]
Name = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class RuleIn(Input):
    name: str = Name
    kind: Kind = Field(
        description="device_offline (for_seconds), job_failed, disk_above (threshold, %), "
        "backlog_above (threshold, records)"
    )
    threshold: float | None = Field(
        None, ge=0, le=1e12, description="disk_above: percent used; backlog_above: records"
    )
    for_seconds: float = Field(
        0.0, ge=0, le=30 * 86400, description="device_offline: seconds offline before it fires"
    )
    enabled: bool = True

    @model_validator(mode="after")
    def _needs(self) -> RuleIn:
        if self.kind in ("disk_above", "backlog_above") and self.threshold is None:
            raise ValueError(f"threshold: required for kind {self.kind}")
        if self.kind == "disk_above" and self.threshold is not None and self.threshold > 100:
            raise ValueError("threshold: disk use is a percentage (0-100)")
        return self


class RulePatch(Input):
    threshold: float | None = Field(None, ge=0, le=1e12)
    for_seconds: float | None = Field(None, ge=0, le=30 * 86400)
    enabled: bool | None = None


class RuleOut(Output):
    id: str
    project: str
    name: str
    kind: str
    threshold: float | None
    for_seconds: float
    enabled: bool
    created_at: Timestamp
    created_by: str
    updated_at: Timestamp


class WebhookIn(Input):
    name: str = Name
    url: str = Field(min_length=8, max_length=2048, description="http(s) URL receiving alerts")
    enabled: bool = True


class WebhookPatch(Input):
    url: str | None = Field(None, min_length=8, max_length=2048)
    enabled: bool | None = None


class WebhookOut(Output):
    id: str
    project: str
    name: str
    url: str
    enabled: bool
    created_at: Timestamp
    created_by: str
    updated_at: Timestamp


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="HMAC-SHA-256 key of the X-Edgefleet-Signature header; shown only now"
    )


class AlertOut(Output):
    id: str
    project: str
    rule: str
    rule_name: str
    kind: str
    subject: str
    labels: dict[str, str]
    state: Literal["firing", "resolved"]
    value: float
    message: str
    started_at: Timestamp
    resolved_at: Timestamp | None


class WebhookMessage(Output):
    """The JSON body POSTed to a webhook (signed: ``X-Edgefleet-Signature: sha256=<hex>``)."""

    status: Literal["firing", "resolved"]
    alert: AlertOut
