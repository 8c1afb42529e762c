"""Alert rules and webhooks (create, list, change, remove), alerts listed, and
the evaluator's writes: a firing alert becomes a row plus one message owed to
each enabled webhook; its resolution, one more message each.

Managing rules and webhooks needs ``manage devices`` (owners, operators);
reading them and the alerts, any project member. A webhook's secret is sealed
with the server's key and returned only by the create call.
"""

from __future__ import annotations

import secrets as pysecrets
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.alerts import evaluate as core
from edgefleet.server.alerts.guard import Allowlist, Refused
from edgefleet.server.alerts.schemas import RuleIn, RulePatch, WebhookIn, WebhookPatch
from edgefleet.server.alerts.tables import Alert, AlertDelivery, AlertRule, AlertWebhook
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.errors import Conflict, Invalid, NotFound
from edgefleet.server.pagination import Page, PageParams, keyset_page, keyset_rows
from edgefleet.server.projects.tables import Project

MANAGE = Permission.MANAGE_DEVICES


def require_manage(caller: Caller, project: Project) -> None:
    """Checked before looking a rule or webhook up, so a role that may not change
    them learns nothing about which exist (403, not 404)."""
    caller.require(project.pk, MANAGE, f"project {project.name!r}")


def allowlist(ctx: ServerContext) -> Allowlist:
    s = ctx.settings
    return Allowlist(s.alert_webhook_allow, s.alert_webhook_allow_loopback)


async def _count(db: AsyncSession, table: Any, project: Project) -> int:
    return int(await db.scalar(select(func.count()).where(table.project_pk == project.pk)) or 0)


async def _commit_named(db: AsyncSession, what: str, name: str) -> None:
    try:
        await db.commit()
    except IntegrityError as exc:
        await db.rollback()
        raise Conflict(f"{what} {name!r} exists already", field="name") from exc


# --- rules ---------------------------------------------------------------


async def add_rule(
    ctx: ServerContext, db: AsyncSession, caller: Caller, project: Project, body: RuleIn
) -> AlertRule:
    caller.require(project.pk, MANAGE, f"project {project.name!r}")
    if await _count(db, AlertRule, project) >= ctx.settings.alert_max_rules:
        raise Invalid(f"project has {ctx.settings.alert_max_rules} rules already", field="name")
    row = AlertRule(
        id=new_id("l"),
        project_pk=project.pk,
        name=body.name,
        kind=body.kind,
        threshold=body.threshold,
        for_seconds=body.for_seconds,
        enabled=body.enabled,
        created_by=caller.name,
    )
    db.add(row)
    await _commit_named(db, "rule", body.name)
    return row


async def rules(
    db: AsyncSession, caller: Caller, project: Project, page: PageParams
) -> Page[AlertRule]:
    caller.require(project.pk, Permission.READ, f"project {project.name!r}")
    query = select(AlertRule).where(AlertRule.project_pk == project.pk)
    return await keyset_page(db, query, AlertRule.pk, page)


async def find_rule(db: AsyncSession, project: Project, ref: str) -> AlertRule:
    row = await db.scalar(
        select(AlertRule).where(
            AlertRule.project_pk == project.pk, (AlertRule.id == ref) | (AlertRule.name == ref)
        )
    )
    if row is None:
        raise NotFound(f"project {project.name} has no alert rule {ref!r}", field="rule")
    return row


async def change_rule(
    db: AsyncSession, caller: Caller, project: Project, row: AlertRule, body: RulePatch
) -> AlertRule:
    caller.require(project.pk, MANAGE, f"project {project.name!r}")
    threshold = body.threshold if body.threshold is not None else row.threshold
    if row.kind == "disk_above" and threshold is not None and threshold > 100:
        raise Invalid("disk use is a percentage (0-100)", field="threshold")
    row.threshold = threshold
    if body.for_seconds is not None:
        row.for_seconds = body.for_seconds
    if body.enabled is not None:
        row.enabled = body.enabled
    row.updated_at = utcnow()
    await db.commit()
    return row


async def remove_rule(db: AsyncSession, caller: Caller, project: Project, row: AlertRule) -> None:
    caller.require(project.pk, MANAGE, f"project {project.name!r}")
    await db.delete(row)
    await db.commit()


# --- webhooks ------------------------------------------------------------


async def _check_url(ctx: ServerContext, url: str) -> None:
    try:
        await allowlist(ctx).check(url)
    except Refused as exc:
        raise Invalid(f"webhook URL {exc}", field="url") from exc


async def add_webhook(
    ctx: ServerContext, db: AsyncSession, caller: Caller, project: Project, body: WebhookIn
) -> tuple[AlertWebhook, str]:
    """The row and its signing secret, in clear, for this one answer."""
    caller.require(project.pk, MANAGE, f"project {project.name!r}")
    await _check_url(ctx, body.url)
    if await _count(db, AlertWebhook, project) >= ctx.settings.alert_max_webhooks:
        raise Invalid(
            f"project has {ctx.settings.alert_max_webhooks} webhooks already", field="name"
        )
    secret = "whsec_" + pysecrets.token_urlsafe(32)
    row = AlertWebhook(
        id=new_id("w"),
        project_pk=project.pk,
        name=body.name,
        url=body.url,
        secret=ctx.registry_auth.box.seal(secret),
        enabled=body.enabled,
        created_by=caller.name,
    )
    db.add(row)
    await _commit_named(db, "webhook", body.name)
    return row, secret


async def webhooks(
    db: AsyncSession, caller: Caller, project: Project, page: PageParams
) -> Page[AlertWebhook]:
    caller.require(project.pk, Permission.READ, f"project {project.name!r}")
    query = select(AlertWebhook).where(AlertWebhook.project_pk == project.pk)
    return await keyset_page(db, query, AlertWebhook.pk, page)


async def find_webhook(db: AsyncSession, project: Project, ref: str) -> AlertWebhook:
    row = await db.scalar(
        select(AlertWebhook).where(
            AlertWebhook.project_pk == project.pk,
            (AlertWebhook.id == ref) | (AlertWebhook.name == ref),
        )
    )
    if row is None:
        raise NotFound(f"project {project.name} has no webhook {ref!r}", field="webhook")
    return row


async def change_webhook(
    ctx: ServerContext,
    db: AsyncSession,
    caller: Caller,
    project: Project,
    row: AlertWebhook,
    body: WebhookPatch,
) -> AlertWebhook:
    caller.require(project.pk, MANAGE, f"project {project.name!r}")
    if body.url is not None:
        await _check_url(ctx, body.url)
        row.url = body.url
    if body.enabled is not None:
        row.enabled = body.enabled
    row.updated_at = utcnow()
    await db.commit()
    return row


async def remove_webhook(
    db: AsyncSession, caller: Caller, project: Project, row: AlertWebhook
) -> None:
    caller.require(project.pk, MANAGE, f"project {project.name!r}")
    await db.delete(row)
    await db.commit()


# --- alerts --------------------------------------------------------------


async def readable_projects(db: AsyncSession, caller: Caller) -> list[Project]:
    """Projects whose alerts the caller may read (the portal's project picker)."""
    pks = caller.visible_projects()
    query = select(Project).order_by(Project.name)
    if pks is not None:
        query = query.where(Project.pk.in_(pks))
    return [p for p in await db.scalars(query) if caller.can(p.pk, Permission.READ)]


async def alerts(
    db: AsyncSession,
    caller: Caller,
    project: Project,
    page: PageParams,
    state: str | None,
) -> Page[tuple[Alert, AlertRule]]:
    """Newest first (the cursor walks down the pk), each with its rule."""
    caller.require(project.pk, Permission.READ, f"project {project.name!r}")
    query = (
        select(Alert, AlertRule)
        .join(AlertRule, AlertRule.pk == Alert.rule_pk)
        .where(Alert.project_pk == project.pk)
    )
    if state is not None:
        query = query.where(Alert.state == state)
    return await keyset_rows(
        db, query, Alert.pk, page, key=lambda row: int(row[0].pk), newest_first=True
    )


async def enabled_rules(db: AsyncSession) -> list[core.Rule]:
    rows = await db.scalars(select(AlertRule).where(AlertRule.enabled.is_(True)))
    return [core.Rule(r.pk, r.project_pk, r.kind, r.threshold, r.for_seconds) for r in rows]


async def firing(db: AsyncSession) -> dict[tuple[int, str], Alert]:
    rows = await db.scalars(select(Alert).where(Alert.state == "firing"))
    return {(a.rule_pk, a.subject): a for a in rows}


def describe(kind: str, obs: core.Observation) -> str:
    who = obs.labels.get("device_name") or obs.subject
    if kind == "device_offline":
        return f"device {who} offline for {obs.value:.0f} s"
    if kind == "job_failed":
        return f"job {obs.labels.get('job_name') or obs.labels.get('job')} failed on {who}"
    if kind == "disk_above":
        return f"device {who} disk {obs.value:.1f}% used"
    return f"device {who} has {obs.value:.0f} records waiting to upload"


async def apply(db: AsyncSession, transitions: list[core.Transition]) -> int:
    """Write transitions and the webhook messages they owe; returns how many."""
    if not transitions:
        return 0
    now = utcnow()
    active = await firing(db)
    rules_by_pk = {r.pk: r for r in await db.scalars(select(AlertRule))}
    hooks: dict[int, list[int]] = {}
    for pk, project_pk in await db.execute(
        select(AlertWebhook.pk, AlertWebhook.project_pk).where(AlertWebhook.enabled.is_(True))
    ):
        hooks.setdefault(project_pk, []).append(pk)
    owed: list[tuple[Alert, str]] = []
    for t in transitions:
        if isinstance(t, core.Firing):
            rule = rules_by_pk.get(t.rule_pk)
            if rule is None:
                continue
            obs = t.observation
            alert = Alert(
                id=new_id("a"),
                project_pk=rule.project_pk,
                rule_pk=rule.pk,
                subject=obs.subject,
                labels=dict(obs.labels),
                state="firing",
                value=obs.value,
                message=describe(rule.kind, obs),
            )
            db.add(alert)
            owed.append((alert, "firing"))
        else:
            found = active.get((t.rule_pk, t.subject))
            if found is None:
                continue
            found.state, found.resolved_at = "resolved", now
            owed.append((found, "resolved"))
    await db.flush()
    for alert, status in owed:
        for webhook_pk in hooks.get(alert.project_pk, []):
            db.add(AlertDelivery(alert_pk=alert.pk, webhook_pk=webhook_pk, status=status))
    await db.commit()
    return len(owed)
