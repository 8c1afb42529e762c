"""Events as the API and the Audit page show them: the project's name, and the
data only as far as the reader may see it (:mod:`.audit` drops the private)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.events import audit
from edgefleet.server.events.tables import Event
from edgefleet.server.projects import service as projects
from edgefleet.server.schemas import Output, Timestamp


class EventOut(Output):
    id: int
    time: Timestamp
    kind: str
    project: str | None = None
    device: str | None = None
    job: str | None = None
    actor: str | None = None
    message: str
    data: dict[str, Any]


def event_out(caller: Caller, event: Event, names: dict[int, Any]) -> EventOut:
    """One event as ``caller`` may read it; ``names`` maps project pks to projects."""
    project = names.get(event.project_pk) if event.project_pk is not None else None
    return EventOut(
        id=event.pk,
        time=event.time,
        kind=event.kind,
        project=project.name if project is not None else None,
        device=event.device_id,
        job=event.job_id,
        actor=event.actor,
        message=event.message,
        data=audit.shown_data(caller, event.project_pk, event.kind, event.data),
    )


async def outputs(db: AsyncSession, caller: Caller, rows: list[Event]) -> list[EventOut]:
    """Several events, their projects' names read in one query."""
    names = await projects.names(db, {e.project_pk for e in rows if e.project_pk is not None})
    return [event_out(caller, e, names) for e in rows]
