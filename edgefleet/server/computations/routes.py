from __future__ import annotations

from fastapi import APIRouter, Query

from edgefleet.server.computations import datasets, service
from edgefleet.server.computations.schemas import ComputationIn, ComputationOut, DatasetOut
from edgefleet.server.computations.scope import Scope
from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.pagination import Page
from edgefleet.server.projects import service as projects

router = APIRouter(tags=["federated"])


@router.post("/computations", status_code=201, response_model=ComputationOut)
async def create_computation(
    body: ComputationIn, caller: CallerDep, db: Db, ctx: Ctx
) -> ComputationOut:
    """Start a secure aggregate over devices' datasets. Answers at once (``running``);
    poll ``GET /computations/{id}``. Refused requests answer 4xx and are audited."""
    return await service.output(db, await service.create(ctx, db, caller, body), ctx)


@router.get("/computations", response_model=Page[ComputationOut])
async def list_computations(
    caller: CallerDep,
    db: Db,
    ctx: Ctx,
    page: Paging,
    project: str | None = None,
    dataset: str | None = None,
    state: str | None = Query(None, description="comma-separated: running,done,failed,refused"),
) -> Page[ComputationOut]:
    listed = await service.listing(
        db,
        caller,
        page,
        await _scope(db, caller, project, dataset),
        states=[s.strip() for s in state.split(",")] if state else None,
    )
    items = [await service.output(db, row, ctx) for row in listed.items]
    return Page(items=items, next=listed.next)


@router.get("/computations/{computation}", response_model=ComputationOut)
async def show_computation(computation: str, caller: CallerDep, db: Db, ctx: Ctx) -> ComputationOut:
    """State, the round in progress, the released result with the epsilon it spent,
    participants and dropped devices (each with its reason)."""
    return await service.output(db, await service.find(db, caller, computation), ctx)


@router.get("/datasets", response_model=Page[DatasetOut])
async def list_datasets(
    caller: CallerDep,
    db: Db,
    page: Paging,
    project: str | None = None,
    dataset: str | None = None,
    device: str | None = None,
) -> Page[DatasetOut]:
    """Datasets declared on the caller's projects' devices, one item per device:
    schema, rounded size and the owner's policy. Never a value."""
    scope = await _scope(db, caller, project, dataset)
    return await datasets.listing(db, caller, page, scope, device=device)


async def _scope(db: Db, caller: CallerDep, project: str | None, dataset: str | None) -> Scope:
    """The named project (404 when the caller cannot see it) and dataset."""
    project_pk = (await projects.find(db, caller, project)).pk if project else None
    return Scope(project_pk=project_pk, dataset=dataset)
