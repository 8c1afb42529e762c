"""``/reservations``: book (or dry-run), list, show, extend/shorten, cancel.
Each change re-applies the jobs on the devices it touches."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.devices import service as devices
from edgefleet.server.pagination import Page
from edgefleet.server.projects import service as projects
from edgefleet.server.reservations import changes, service
from edgefleet.server.reservations.booking import Plan
from edgefleet.server.reservations.schemas import (
    DryRunOut,
    ReservationIn,
    ReservationOut,
    ReservationPatch,
)

router = APIRouter(tags=["reservations"])


@router.post(
    "/reservations",
    status_code=201,
    response_model=ReservationOut,
    responses={200: {"model": DryRunOut, "description": "dry run: what would be booked"}},
)
async def create_reservation(
    body: ReservationIn, caller: CallerDep, db: Db, ctx: Ctx
) -> ReservationOut | JSONResponse:
    """Book devices for a window; 409 with ``conflicts`` if any; ``dry_run``: 200, nothing held."""
    made = await changes.book(ctx, db, caller, body)
    if isinstance(made, Plan):
        out = service.dry_run_out(made)
        return JSONResponse(out.model_dump(mode="json"), status_code=200)
    return (await service.outputs(db, [made]))[0]


@router.get("/reservations", response_model=Page[ReservationOut])
async def list_reservations(
    caller: CallerDep,
    db: Db,
    page: Paging,
    project: str | None = Query(None, description="only this project's"),
    device: str | None = Query(None, description="only those holding this device"),
    since: datetime | None = Query(None, alias="from", description="ending after this time"),
    until: datetime | None = Query(None, alias="to", description="starting before this time"),
) -> Page[ReservationOut]:
    project_pk = (await projects.find(db, caller, project)).pk if project else None
    device_pk = (await devices.find(db, caller, device))[0].pk if device else None
    found = await service.listing(
        db, caller, page, project_pk=project_pk, device_pk=device_pk, since=since, until=until
    )
    return Page(items=await service.outputs(db, found.items), next=found.next)


@router.get("/reservations/{reservation}", response_model=ReservationOut)
async def show_reservation(reservation: str, caller: CallerDep, db: Db) -> ReservationOut:
    found = await service.find(db, caller, reservation)
    return (await service.outputs(db, [found]))[0]


@router.patch("/reservations/{reservation}", response_model=ReservationOut)
async def change_reservation(
    reservation: str, body: ReservationPatch, caller: CallerDep, db: Db, ctx: Ctx
) -> ReservationOut:
    """Extend or shorten (409 with ``conflicts`` if the new window collides)."""
    changed = await changes.change(ctx, db, caller, reservation, body)
    return (await service.outputs(db, [changed]))[0]


@router.delete("/reservations/{reservation}", status_code=204)
async def cancel_reservation(reservation: str, caller: CallerDep, db: Db, ctx: Ctx) -> None:
    """Cancel: its jobs stop on its devices; others' jobs may land there again."""
    await changes.cancel(ctx, db, caller, reservation)
