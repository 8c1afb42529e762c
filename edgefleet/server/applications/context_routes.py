"""Routes of build contexts (see :mod:`edgefleet.server.applications.contexts`):
users upload them, devices fetch them with their own credential."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from edgefleet.server.applications import contexts
from edgefleet.server.auth.roles import Permission
from edgefleet.server.data.objects import open_store
from edgefleet.server.deps import CallerDep, Ctx, Db, bearer_token
from edgefleet.server.projects import service as projects
from edgefleet.server.schemas import Output

router = APIRouter(tags=["applications"])


class ContextOut(Output):
    context: str
    size: int
    project: str


@router.post("/build-contexts", status_code=201, response_model=ContextOut)
async def upload_context(
    request: Request, caller: CallerDep, db: Db, ctx: Ctx, project: str = Query("default")
) -> ContextOut:
    """A tar body (``application/x-tar``, optionally gzipped); name the answer's
    ``context`` in ``POST /applications`` or ``/applications/{app}/versions``."""
    found = await projects.find(db, caller, project)
    caller.require(found.pk, Permission.MANAGE_APPS, f"project {found.name!r}")
    store = open_store(ctx.settings.object_store, ctx.settings.data_dir)
    digest, size = await contexts.store_upload(
        store, found.pk, request.stream(), ctx.settings.build_context_max_bytes
    )
    return ContextOut(context=digest, size=size, project=found.name)


@router.get("/agent/build-contexts/{job}/{digest}")
async def fetch_context(
    job: str, digest: str, request: Request, db: Db, ctx: Ctx
) -> StreamingResponse:
    """For a device assigned to the job (its credential as the bearer token)."""
    store = open_store(ctx.settings.object_store, ctx.settings.data_dir)
    chunks = await contexts.for_device(db, store, bearer_token(request), job, digest)
    return StreamingResponse(chunks, media_type="application/x-tar")
