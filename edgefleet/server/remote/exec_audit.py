"""The exec audit log: written around every command run on a device or in a
workload (:func:`start`, :func:`finish`), and read as ``GET /audit/exec``
shows it, oldest first, for the caller's projects; the argv only for those
who see secrets (owners, operators, admins: :mod:`..redact`).

An exec costs its audit two commits, and each is needed: :func:`start`
commits the row *before* the command is sent, so a command that ran is on
record even if the server dies while it runs; :func:`finish` commits the exit
code *before* the answer, so ``GET /audit/exec`` read after a 200 shows it.
Both run on the request's own session (no second connection checked out;
the start's commit also ends the read transaction of the auth and target
lookups, so no snapshot is held while the device works), and the finish is
one ``UPDATE`` by primary key (the row's other fields are kept from the
start, not read back).
"""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server import redact
from edgefleet.server.auth.caller import Caller
from edgefleet.server.db.base import utcnow
from edgefleet.server.events.service import EventLog
from edgefleet.server.pagination import Page, PageParams, keyset_page
from edgefleet.server.projects import service as projects
from edgefleet.server.remote.tables import ExecAudit
from edgefleet.server.schemas import Output, Timestamp


async def start(
    db: AsyncSession,
    events: EventLog,
    user: str,
    project_pk: int,
    device: str,
    command: list[str],
    *,
    job: str | None = None,
    service: str | None = None,
    interactive: bool = False,
) -> ExecAudit:
    """Record (and commit) that ``user`` is about to run ``command``; the
    ``exec`` event follows. Returns the row for :func:`finish`."""
    row = ExecAudit(
        user=user,
        project_pk=project_pk,
        device_id=device,
        job_id=job,
        service=service,
        command=command,
        interactive=interactive,
    )
    db.add(row)
    await db.commit()
    # The argv may hold secrets: it goes in ``data.command`` only, which the
    # events API shows to operators and up (events/audit.PRIVATE_DATA).
    where = f"{job}/{service} on {device}" if job else device
    what = "opened a shell" if interactive else "ran a command"
    events.record(
        "exec",
        project_pk,
        f"{user} {what} on {where}",
        device_id=device,
        job_id=job,
        actor=user,
        data={"command": command, "interactive": interactive, "exec": row.pk},
    )
    return row


async def finish(
    db: AsyncSession,
    events: EventLog,
    row: ExecAudit,
    exit_code: int | None,
    error: str | None,
) -> None:
    """Record (and commit) how the command of :func:`start`'s ``row`` ended; the
    ``exec.finished`` event follows. Nothing when the row is gone (its project
    was deleted meanwhile)."""
    done = await db.execute(
        update(ExecAudit)
        .where(ExecAudit.pk == row.pk)
        .values(exit_code=exit_code, error=error, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await db.commit()
    if done.rowcount == 0:  # type: ignore[attr-defined]
        return
    where = f"{row.job_id}/{row.service} on {row.device_id}" if row.job_id else row.device_id
    ended = f"exit code {exit_code}" if exit_code is not None else (error or "no exit code")
    events.record(
        "exec.finished",
        row.project_pk,
        f"{row.user}'s command on {where} ended: {ended}"[:1024],
        device_id=row.device_id,
        job_id=row.job_id,
        actor=row.user,
        data={"exec": row.pk, "exit_code": exit_code, "error": error},
    )


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
