"""``GET /jobs/{job}/runs``: what a periodic job's fire times did on each device."""

from __future__ import annotations

from fastapi import APIRouter, Query

from edgefleet.server.deps import CallerDep, Db, Paging
from edgefleet.server.jobs import service as jobs
from edgefleet.server.pagination import Page
from edgefleet.server.schedules import service
from edgefleet.server.schedules.schemas import RunOut

router = APIRouter(tags=["jobs"])


@router.get("/jobs/{job}/runs", response_model=Page[RunOut])
async def job_runs(
    job: str,
    caller: CallerDep,
    db: Db,
    page: Paging,
    device: str | None = Query(None, max_length=128, description="device id or name"),
    state: str | None = Query(
        None, max_length=64, description="ok, failed, skipped (comma-separated)"
    ),
) -> Page[RunOut]:
    """Runs of a periodic job, newest first: device, fire time, start, finish,
    exit code, state. Runs made while a device was offline appear once it
    reconnects."""
    found = await jobs.find(db, caller, job)
    return await service.page(db, found, page, device=device, state=state)
