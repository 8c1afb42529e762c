"""The Audit page: the event log, newest first, filtered by kind, actor,
project and time range, for administrators (everything, users and sign-ins
included) and project owners (the projects they own).

Reads through the same query and visibility rules as ``GET /api/v1/events``
(:mod:`edgefleet.server.events.audit`), so the page never shows what the API
would hide: exec argv only where the viewer sees secrets, failed sign-ins only
for administrators. Pages go backwards with the shared cursor helper.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from edgefleet.server.deps import Db
from edgefleet.server.errors import Forbidden, Invalid
from edgefleet.server.events import audit
from edgefleet.server.events import service as events
from edgefleet.server.events import view as event_view
from edgefleet.server.pagination import PageParams, decode_cursor
from edgefleet.server.portal import web
from edgefleet.server.portal.web import Viewer, ViewerDep
from edgefleet.server.projects import service as projects

router = web.page_router()

PAGE = 50
FILTERS = ("kind", "actor", "project", "since", "until")


def may_audit(viewer: Viewer) -> bool:
    """Administrators, and owners of at least one project."""
    return viewer.caller.is_admin or bool(audit.owned(viewer.caller))


def _time(value: str, name: str) -> datetime | None:
    """A filter's time: ISO 8601 or the browser's datetime-local, read as UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{name}: not a date and time: {value[:40]!r}", field=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _listing(db: Db, viewer: Viewer, values: dict[str, str], cursor: str) -> dict[str, Any]:
    if not may_audit(viewer):
        raise Forbidden("the audit log is for administrators and project owners")
    caller = viewer.caller
    choices = [
        p
        for p in await projects.visible(db, caller)
        if caller.is_admin or p.pk in audit.owned(caller)
    ]
    error = ""
    rows: list[Any] = []
    next_cursor: str | None = None
    try:
        project_pk = None
        if values["project"]:
            project_pk = (await projects.find(db, caller, values["project"])).pk
        where = events.EventFilter(
            project_pk=project_pk,
            kind=values["kind"] or None,
            actor=values["actor"] or None,
            since=_time(values["since"], "since"),
            until=_time(values["until"], "until"),
            owned_only=True,
        )
        found = await events.search(
            db,
            caller,
            where,
            PageParams(limit=PAGE, after=decode_cursor(cursor)),
            newest_first=True,
        )
        rows, next_cursor = found.items, found.next
    except Invalid as exc:
        error = exc.message
    items = await event_view.outputs(db, caller, rows)
    query = {k: v for k, v in values.items() if v}
    older = None
    if next_cursor is not None:
        older = "/audit?" + urlencode(query | {"cursor": next_cursor})
    return {
        "items": items,
        "data": {e.id: json.dumps(e.data, ensure_ascii=False, sort_keys=True) for e in items},
        "values": values,
        "projects": choices,
        "error": error,
        "older": older,
        "newest": "/audit?" + urlencode(query) if cursor else None,
        "query": urlencode(query | ({"cursor": cursor} if cursor else {})),
    }


def _values(kind: str, actor: str, project: str, since: str, until: str) -> dict[str, str]:
    return {
        "kind": kind.strip()[:64],
        "actor": actor.strip()[:64],
        "project": project.strip()[:128],
        "since": since.strip()[:40],
        "until": until.strip()[:40],
    }


Text = Annotated[str, Query(max_length=200)]


@dataclass
class AuditQuery:
    """The page's filters and cursor, as the page and its fragment both take them."""

    kind: Text = ""
    actor: Text = ""
    project: Text = ""
    since: Text = ""
    until: Text = ""
    cursor: Text = ""

    def values(self) -> dict[str, str]:
        return _values(self.kind, self.actor, self.project, self.since, self.until)


AuditFilters = Annotated[AuditQuery, Depends(web.query_of(AuditQuery))]


@router.get("/audit")
async def audit_page(request: Request, viewer: ViewerDep, db: Db, query: AuditFilters) -> Response:
    context = await _listing(db, viewer, query.values(), query.cursor)
    return web.render(request, "audit.html", context, status=400 if context["error"] else 200)


@router.get("/portal/fragments/audit")
async def audit_fragment(
    request: Request, viewer: ViewerDep, db: Db, query: AuditFilters
) -> Response:
    context = await _listing(db, viewer, query.values(), query.cursor)
    return web.render(request, "fragments/audit_rows.html", context)
