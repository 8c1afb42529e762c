"""Calls about alerting: a project's rules, the webhooks alerts are posted to,
and the alerts themselves."""

from __future__ import annotations

from typing import Any

from edgefleet.client.models import Alert, AlertRule, Webhook, WebhookCreated
from edgefleet.client.transport import JSON, Transport


class AlertCalls(Transport):
    def alert_rules(self, project: str = "default") -> list[AlertRule]:
        """The project's alert rules."""
        return self._all(AlertRule, f"/projects/{project}/alert-rules")

    def add_alert_rule(
        self,
        name: str,
        kind: str,
        *,
        threshold: float | None = None,
        for_seconds: float = 0.0,
        project: str = "default",
    ) -> AlertRule:
        """A rule: kind device_offline (for_seconds), job_failed, disk_above (threshold %)
        or backlog_above (threshold records). Invalid for an unknown kind or a missing
        threshold; Conflict if the name is taken."""
        body: JSON = {"name": name, "kind": kind, "for_seconds": for_seconds}
        if threshold is not None:
            body["threshold"] = threshold
        return self._send(AlertRule, "POST", f"/projects/{project}/alert-rules", body)

    def update_alert_rule(
        self, rule: str, *, project: str = "default", **changes: Any
    ) -> AlertRule:
        """Change a rule's threshold, for_seconds or enabled (by name or id)."""
        path = f"/projects/{project}/alert-rules/{rule}"
        return self._send(AlertRule, "PATCH", path, changes)

    def remove_alert_rule(self, rule: str, *, project: str = "default") -> None:
        """Delete a rule and its alerts; NotFound if unknown."""
        self.delete(f"/projects/{project}/alert-rules/{rule}")

    def webhooks(self, project: str = "default") -> list[Webhook]:
        """The project's alert webhooks (never their secrets)."""
        return self._all(Webhook, f"/projects/{project}/webhooks")

    def add_webhook(self, name: str, url: str, *, project: str = "default") -> WebhookCreated:
        """Register a receiver; the answer's ``secret`` (HMAC key) is shown only this
        once. Invalid for a URL the server refuses."""
        body = {"name": name, "url": url}
        return self._send(WebhookCreated, "POST", f"/projects/{project}/webhooks", body)

    def update_webhook(self, webhook: str, *, project: str = "default", **changes: Any) -> Webhook:
        """Change a webhook's url or enabled (by name or id)."""
        return self._send(Webhook, "PATCH", f"/projects/{project}/webhooks/{webhook}", changes)

    def remove_webhook(self, webhook: str, *, project: str = "default") -> None:
        """Delete a webhook; messages still owed to it are dropped."""
        self.delete(f"/projects/{project}/webhooks/{webhook}")

    def alerts(
        self, project: str = "default", *, state: str | None = None, limit: int | None = None
    ) -> list[Alert]:
        """Alerts, newest first; ``state`` 'firing' or 'resolved' to filter."""
        return self._all(Alert, f"/projects/{project}/alerts", limit, state=state)
