"""Operator controls of a job's staged rollout; each answers the job."""

from __future__ import annotations

from fastapi import APIRouter

from edgefleet.server.deps import CallerDep, Ctx, Db
from edgefleet.server.jobs import service as jobs
from edgefleet.server.jobs.schemas import JobOut
from edgefleet.server.rollouts import service

router = APIRouter(tags=["jobs"])


@router.post("/jobs/{job}/rollout/pause", response_model=JobOut)
async def pause_rollout(job: str, caller: CallerDep, db: Db, ctx: Ctx) -> JobOut:
    """Stop moving further batches; moved devices stay where they are."""
    found = await jobs.find(db, caller, job)
    await service.control(ctx, db, caller, found, "pause")
    return await jobs.output(db, found, caller)


@router.post("/jobs/{job}/rollout/resume", response_model=JobOut)
async def resume_rollout(job: str, caller: CallerDep, db: Db, ctx: Ctx) -> JobOut:
    """Go on with the next batch (failures counted so far are forgiven)."""
    found = await jobs.find(db, caller, job)
    await service.control(ctx, db, caller, found, "resume")
    return await jobs.output(db, found, caller)


@router.post("/jobs/{job}/rollout/abort", response_model=JobOut)
async def abort_rollout(job: str, caller: CallerDep, db: Db, ctx: Ctx) -> JobOut:
    """Put every moved device and the job back on the previous version."""
    found = await jobs.find(db, caller, job)
    await service.control(ctx, db, caller, found, "abort")
    return await jobs.output(db, found, caller)


@router.post("/jobs/{job}/rollout/override-locks", response_model=JobOut)
async def override_locks(job: str, caller: CallerDep, db: Db, ctx: Ctx) -> JobOut:
    """Upgrades and restarts of this job stop waiting for the update locks held now."""
    found = await jobs.find(db, caller, job)
    await service.override_locks(ctx, db, caller, found)
    return await jobs.output(db, found, caller)
