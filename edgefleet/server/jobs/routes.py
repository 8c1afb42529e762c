from __future__ import annotations

import json

from fastapi import APIRouter, Query, Response

from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.jobs import devices, service
from edgefleet.server.jobs.schemas import JobDeviceOut, JobIn, JobOut, JobPatch
from edgefleet.server.pagination import Page

router = APIRouter(tags=["jobs"])


@router.post("/jobs", status_code=201, response_model=JobOut)
async def create_job(body: JobIn, caller: CallerDep, db: Db, ctx: Ctx) -> JobOut:
    job = await service.create(ctx, db, caller, body)
    return await service.output(db, job, caller)


@router.get("/jobs", response_model=Page[JobOut])
async def list_jobs(
    caller: CallerDep,
    db: Db,
    page: Paging,
    project: str | None = None,
    application: str | None = None,
    state: str | None = Query(None, description="comma-separated states"),
    devices: bool = Query(True, description="include per-device status"),
) -> Page[JobOut]:
    states = [s.strip() for s in state.split(",")] if state else None
    found = await service.listing(
        db, caller, page, project=project, application=application, states=states
    )
    items = [await service.output(db, j, caller, with_devices=devices) for j in found.items]
    return Page(items=items, next=found.next)


@router.get("/jobs/{job}", response_model=JobOut)
async def show_job(
    job: str,
    caller: CallerDep,
    db: Db,
    devices: bool = Query(True, description="include per-device status"),
) -> Response:
    found, about = await service.find_shown(db, caller, job)
    body = await service.output_json(db, found, caller, with_devices=devices, about=about)
    return Response(content=body, media_type="application/json")


@router.get("/jobs/{job}/devices", response_model=Page[JobDeviceOut])
async def job_devices(
    job: str,
    caller: CallerDep,
    db: Db,
    page: Paging,
    state: str | None = Query(None, description="comma-separated device states"),
) -> Response:
    """Every device of the job with its status, a page at a time (``GET /jobs/{id}``
    carries only the first 100)."""
    found = await service.find(db, caller, job)
    listed = await service.device_page(db, found, page, devices.parse_states(state))
    body = {"items": listed.items, "next": listed.next}
    return Response(content=json.dumps(body, separators=(",", ":")), media_type="application/json")


@router.patch("/jobs/{job}", response_model=JobOut)
async def patch_job(job: str, body: JobPatch, caller: CallerDep, db: Db, ctx: Ctx) -> JobOut:
    found = await service.find(db, caller, job)
    return await service.output(db, await service.patch(ctx, db, caller, found, body), caller)


@router.post("/jobs/{job}/cancel", response_model=JobOut)
async def cancel_job(job: str, caller: CallerDep, db: Db, ctx: Ctx) -> JobOut:
    found = await service.find(db, caller, job)
    return await service.output(db, await service.cancel(ctx, db, caller, found), caller)


@router.delete("/jobs/{job}", status_code=204)
async def delete_job(job: str, caller: CallerDep, db: Db, ctx: Ctx) -> None:
    await service.delete(ctx, db, caller, await service.find(db, caller, job))
