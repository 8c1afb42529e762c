"""Sending owed webhook messages: signed, retried with backoff and jitter, bounded.

Each :class:`AlertDelivery` row is one message. A pass takes the due rows,
POSTs their JSON bodies and marks them done on a 2xx answer. Anything else
(status, timeout, refused address) schedules the next try
``backoff * 2**(attempt-1)`` seconds later, times a jitter in [0.5, 1.5), so
receivers recovering from an outage are not hit by every server in step;
after ``--alert-webhook-attempts`` tries the row is given up, the reason kept.
A ``resolved`` message waits until its ``firing`` one is settled, so a
receiver never sees them out of order.

Headers: ``X-Edgefleet-Signature: sha256=<hex HMAC-SHA-256 of the body with
the webhook's secret>``, ``X-Edgefleet-Delivery`` (stable across retries, for
receivers that dedupe), ``X-Edgefleet-Event`` (firing|resolved).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from edgefleet.server.alerts.guard import Refused
from edgefleet.server.alerts.schemas import AlertOut, WebhookMessage
from edgefleet.server.alerts.service import allowlist
from edgefleet.server.alerts.tables import Alert, AlertDelivery, AlertRule, AlertWebhook
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import utcnow
from edgefleet.server.projects.tables import Project
from edgefleet.server.registries.crypto import SecretKeyError

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

BATCH = 100
PARALLEL = 10  # receivers contacted at once


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delay(backoff: float, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before try ``attempt + 1``: exponential, jittered, capped at an hour."""
    jitter = 0.5 + (rng or random).random()
    return float(min(3600.0, backoff * 2 ** max(0, attempt - 1) * jitter))


def alert_out(alert: Alert, rule: AlertRule, project: Project) -> AlertOut:
    return AlertOut(
        id=alert.id,
        project=project.name,
        rule=rule.id,
        rule_name=rule.name,
        kind=rule.kind,
        subject=alert.subject,
        labels={str(k): str(v) for k, v in alert.labels.items()},
        state="resolved" if alert.state == "resolved" else "firing",
        value=alert.value,
        message=alert.message,
        started_at=alert.created_at,
        resolved_at=alert.resolved_at,
    )


async def _post(
    ctx: ServerContext, client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> str | None:
    """None when delivered, else why not."""
    import httpx  # loaded with the client

    try:
        await allowlist(ctx).check(url)
    except Refused as exc:
        return f"refused: webhook URL {exc}"
    try:
        answer = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{exc.__class__.__name__}: {exc}"[:500]
    if 200 <= answer.status_code < 300:
        return None
    return f"receiver answered {answer.status_code}"


async def _post_all(
    ctx: ServerContext,
    client: Callable[[], httpx.AsyncClient],
    sends: list[tuple[str, bytes, dict[str, str]]],
) -> list[str | None]:
    """POST every (url, body, headers), side by side: one slow receiver must not
    hold up the others. The client is asked for only when there is a message."""
    if not sends:
        return []
    http = client()
    gate = asyncio.Semaphore(PARALLEL)

    async def send(url: str, body: bytes, headers: dict[str, str]) -> str | None:
        async with gate:
            return await _post(ctx, http, url, body, headers)

    return await asyncio.gather(*(send(*one) for one in sends))


async def deliver_due(ctx: ServerContext, client: Callable[[], httpx.AsyncClient]) -> int:
    """One pass over due messages; returns how many were delivered. ``client``
    gives the HTTP client, asked for only when a message is due."""
    s = ctx.settings
    now = utcnow()
    async with ctx.session() as db:
        rows = (
            await db.execute(
                select(AlertDelivery, Alert, AlertRule, AlertWebhook, Project)
                .join(Alert, Alert.pk == AlertDelivery.alert_pk)
                .join(AlertRule, AlertRule.pk == Alert.rule_pk)
                .join(AlertWebhook, AlertWebhook.pk == AlertDelivery.webhook_pk)
                .join(Project, Project.pk == Alert.project_pk)
                .where(AlertDelivery.done.is_(False), AlertDelivery.next_at <= now)
                .order_by(AlertDelivery.pk)
                .limit(BATCH)
            )
        ).all()
        unsettled = {
            (a, w)
            for a, w in (
                await db.execute(
                    select(AlertDelivery.alert_pk, AlertDelivery.webhook_pk).where(
                        AlertDelivery.done.is_(False), AlertDelivery.status == "firing"
                    )
                )
            ).all()
        }
        sends: list[tuple[AlertDelivery, str, str, bytes, dict[str, str]]] = []
        for row, alert, rule, webhook, project in list(rows):
            if row.status == "resolved" and (alert.pk, webhook.pk) in unsettled:
                continue  # its firing message first (a later pass)
            message = WebhookMessage(
                status="resolved" if row.status == "resolved" else "firing",
                alert=alert_out(alert, rule, project),
            )
            body = message.model_dump_json().encode()
            try:
                secret = ctx.registry_auth.box.open(webhook.secret)
            except SecretKeyError as exc:  # the server's key changed: this row can never go
                row.done, row.last_error = True, f"cannot open the webhook's secret: {exc}"
                log.error("webhook %s: %s", webhook.id, row.last_error)
                continue
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "edgefleet-alerts",
                "X-Edgefleet-Signature": sign(secret, body),
                "X-Edgefleet-Delivery": f"{alert.id}-{row.status}",
                "X-Edgefleet-Event": row.status,
            }
            sends.append((row, webhook.id, webhook.url, body, headers))
        errors = await _post_all(ctx, client, [(u, b, h) for _r, _w, u, b, h in sends])
        delivered = 0
        for (row, webhook_id, _url, _body, _headers), error in zip(sends, errors, strict=True):
            row.attempts += 1
            row.last_error = error
            if error is None:
                row.done = row.delivered = True
                delivered += 1
            elif row.attempts >= s.alert_webhook_attempts:
                row.done = True
                log.warning("webhook %s gave up on delivery %d: %s", webhook_id, row.pk, error)
            else:
                wait = delay(s.alert_webhook_backoff, row.attempts)
                row.next_at = utcnow() + timedelta(seconds=wait)
        await db.commit()
        return delivered
