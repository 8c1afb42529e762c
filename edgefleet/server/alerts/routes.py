"""``/projects/{project}/alert-rules``, ``/webhooks`` and ``/alerts`` (SPEC, issue 18)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from edgefleet.server.alerts import service
from edgefleet.server.alerts.delivery import alert_out
from edgefleet.server.alerts.schemas import (
    AlertOut,
    RuleIn,
    RuleOut,
    RulePatch,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
)
from edgefleet.server.alerts.tables import AlertRule, AlertWebhook
from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.pagination import Page
from edgefleet.server.projects import service as projects
from edgefleet.server.projects.tables import Project

router = APIRouter(tags=["alerts"])


def _rule(project: Project, r: AlertRule) -> RuleOut:
    return RuleOut(
        id=r.id,
        project=project.name,
        name=r.name,
        kind=r.kind,
        threshold=r.threshold,
        for_seconds=r.for_seconds,
        enabled=r.enabled,
        created_at=r.created_at,
        created_by=r.created_by,
        updated_at=r.updated_at,
    )


def _webhook(project: Project, w: AlertWebhook) -> WebhookOut:
    return WebhookOut(
        id=w.id,
        project=project.name,
        name=w.name,
        url=w.url,
        enabled=w.enabled,
        created_at=w.created_at,
        created_by=w.created_by,
        updated_at=w.updated_at,
    )


@router.post("/projects/{project}/alert-rules", status_code=201, response_model=RuleOut)
async def add_rule(project: str, body: RuleIn, caller: CallerDep, db: Db, ctx: Ctx) -> RuleOut:
    """A rule: what to watch (kind) and when it fires (threshold / for_seconds)."""
    found = await projects.find(db, caller, project)
    return _rule(found, await service.add_rule(ctx, db, caller, found, body))


@router.get("/projects/{project}/alert-rules", response_model=Page[RuleOut])
async def list_rules(project: str, caller: CallerDep, db: Db, page: Paging) -> Page[RuleOut]:
    found = await projects.find(db, caller, project)
    listed = await service.rules(db, caller, found, page)
    return Page(items=[_rule(found, r) for r in listed.items], next=listed.next)


@router.get("/projects/{project}/alert-rules/{rule}", response_model=RuleOut)
async def get_rule(project: str, rule: str, caller: CallerDep, db: Db) -> RuleOut:
    found = await projects.find(db, caller, project)
    return _rule(found, await service.find_rule(db, found, rule))


@router.patch("/projects/{project}/alert-rules/{rule}", response_model=RuleOut)
async def change_rule(
    project: str, rule: str, body: RulePatch, caller: CallerDep, db: Db
) -> RuleOut:
    found = await projects.find(db, caller, project)
    service.require_manage(caller, found)
    row = await service.find_rule(db, found, rule)
    return _rule(found, await service.change_rule(db, caller, found, row, body))


@router.delete("/projects/{project}/alert-rules/{rule}", status_code=204)
async def remove_rule(project: str, rule: str, caller: CallerDep, db: Db) -> None:
    """Removes the rule and its alerts (no resolved message is sent for them)."""
    found = await projects.find(db, caller, project)
    service.require_manage(caller, found)
    await service.remove_rule(db, caller, found, await service.find_rule(db, found, rule))


@router.post("/projects/{project}/webhooks", status_code=201, response_model=WebhookCreated)
async def add_webhook(
    project: str, body: WebhookIn, caller: CallerDep, db: Db, ctx: Ctx
) -> WebhookCreated:
    """A receiver of the project's alerts. The answer carries the signing secret,
    the only time it is shown."""
    found = await projects.find(db, caller, project)
    row, secret = await service.add_webhook(ctx, db, caller, found, body)
    return WebhookCreated(**_webhook(found, row).model_dump(), secret=secret)


@router.get("/projects/{project}/webhooks", response_model=Page[WebhookOut])
async def list_webhooks(project: str, caller: CallerDep, db: Db, page: Paging) -> Page[WebhookOut]:
    found = await projects.find(db, caller, project)
    listed = await service.webhooks(db, caller, found, page)
    return Page(items=[_webhook(found, w) for w in listed.items], next=listed.next)


@router.get("/projects/{project}/webhooks/{webhook}", response_model=WebhookOut)
async def get_webhook(project: str, webhook: str, caller: CallerDep, db: Db) -> WebhookOut:
    found = await projects.find(db, caller, project)
    return _webhook(found, await service.find_webhook(db, found, webhook))


@router.patch("/projects/{project}/webhooks/{webhook}", response_model=WebhookOut)
async def change_webhook(
    project: str, webhook: str, body: WebhookPatch, caller: CallerDep, db: Db, ctx: Ctx
) -> WebhookOut:
    found = await projects.find(db, caller, project)
    service.require_manage(caller, found)
    row = await service.find_webhook(db, found, webhook)
    return _webhook(found, await service.change_webhook(ctx, db, caller, found, row, body))


@router.delete("/projects/{project}/webhooks/{webhook}", status_code=204)
async def remove_webhook(project: str, webhook: str, caller: CallerDep, db: Db) -> None:
    found = await projects.find(db, caller, project)
    service.require_manage(caller, found)
    await service.remove_webhook(db, caller, found, await service.find_webhook(db, found, webhook))


@router.get("/projects/{project}/alerts", response_model=Page[AlertOut])
async def list_alerts(
    project: str,
    caller: CallerDep,
    db: Db,
    page: Paging,
    state: Annotated[Literal["firing", "resolved"] | None, Query()] = None,
) -> Page[AlertOut]:
    """Alerts, newest first; ``state=firing`` for the active ones."""
    found = await projects.find(db, caller, project)
    listed = await service.alerts(db, caller, found, page, state)
    return Page(items=[alert_out(a, r, found) for a, r in listed.items], next=listed.next)
