"""The exec audit log as ``GET /audit/exec`` shows it: every command run on a
device or in a workload, oldest first, for the caller's projects; the argv
only for those who see secrets (owners, operators, admins: :mod:`..redact`)."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server import redact
from edgefleet.server.auth.caller import Caller
from edgefleet.server.pagination import Page, PageParams, keyset_page
from edgefleet.server.projects import service as projects
from edgefleet.server.remote.tables import ExecAudit
from edgefleet.server.schemas import Output, Timestamp


class AuditOut(Output):
    id: int
    time: Timestamp
    finished_at: Timestamp | None = None
    user: str
    device: str
    job: str | None = None
    service: str | None = None
    command: list[str] | None = Field(
        None, description="the argv; only for owners, operators and admins"
    )
    interactive: bool
    exit_code: int | None = None
    error: str | None = None


async def listing(
    db: AsyncSession,
    caller: Caller,
    page: PageParams,
    device: str | None = None,
    job: str | None = None,
) -> Page[AuditOut]:
    query = select(ExecAudit)
    query = projects.in_visible(query, ExecAudit.project_pk, caller)
    if device:
        query = query.where(ExecAudit.device_id == device)
    if job:
        query = query.where(ExecAudit.job_id == job)
    found = await keyset_page(db, query, ExecAudit.pk, page)
    items = [
        AuditOut(
            id=r.pk,
            time=r.time,
            finished_at=r.finished_at,
            user=r.user,
            device=r.device_id,
            job=r.job_id,
            service=r.service,
            command=r.command if redact.sees_secrets(caller, r.project_pk) else None,
            interactive=r.interactive,
            exit_code=r.exit_code,
            error=r.error,
        )
        for r in found.items
    ]
    return Page(items=items, next=found.next)
