from __future__ import annotations

from fastapi import APIRouter

from edgefleet.server.deps import CallerDep, Ctx, Db
from edgefleet.server.pagination import Page
from edgefleet.server.projects import service as projects
from edgefleet.server.readiness import service
from edgefleet.server.readiness.schemas import RequirementOut, RequirementsIn

router = APIRouter(tags=["devices"])


@router.get("/projects/{project}/device-requirements", response_model=Page[RequirementOut])
async def show_requirements(project: str, caller: CallerDep, db: Db) -> Page[RequirementOut]:
    found = await projects.find(db, caller, project)
    rows = await service.of_project(db, found.pk)
    return Page(
        items=[RequirementOut(selector=r.selector, peripherals=r.peripherals) for r in rows]
    )


@router.put("/projects/{project}/device-requirements", response_model=Page[RequirementOut])
async def replace_requirements(
    project: str, body: RequirementsIn, caller: CallerDep, db: Db, ctx: Ctx
) -> Page[RequirementOut]:
    """Replace the project's peripheral requirements; devices' readiness follows at once."""
    found = await projects.find(db, caller, project)
    rows = await service.replace(db, caller, found, body.items)
    ctx.events.record(
        "project.device_requirements",
        found.pk,
        f"device requirements of {found.name} set by {caller.name} ({len(rows)} rules)",
        actor=caller.name,
    )
    await ctx.hub.fleet_changed(found.pk)
    return Page(
        items=[RequirementOut(selector=r.selector, peripherals=r.peripherals) for r in rows]
    )
