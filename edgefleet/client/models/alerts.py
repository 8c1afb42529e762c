"""What the server answers about alert rules, webhooks and alerts.

Typed views of the JSON bodies (generated once from the server's OpenAPI
schemas): plain dicts at run time, so ``result["id"]`` keeps working, and
mypy checks every key a caller reads.
"""

from __future__ import annotations

from typing import TypedDict


class AlertRule(TypedDict):
    """An alert rule of a project."""

    id: str
    project: str
    name: str
    kind: str
    threshold: float | None
    for_seconds: float
    enabled: bool
    created_at: str
    created_by: str
    updated_at: str


class Webhook(TypedDict):
    """An alert webhook (never its secret)."""

    id: str
    project: str
    name: str
    url: str
    enabled: bool
    created_at: str
    created_by: str
    updated_at: str


class WebhookCreated(Webhook):
    """A new webhook: ``secret`` (the HMAC key) is shown only this once."""

    secret: str


class Alert(TypedDict):
    """An alert, firing or resolved."""

    id: str
    project: str
    rule: str
    rule_name: str
    kind: str
    subject: str
    labels: dict[str, str]
    state: str
    value: float
    message: str
    started_at: str
    resolved_at: str | None
