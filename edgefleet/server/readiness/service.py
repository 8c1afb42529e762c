"""Device requirements: replace and read a project's rules, and judge devices."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.labels import parse_selector
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.db.base import new_id
from edgefleet.server.projects.tables import Project
from edgefleet.server.readiness.check import Rule
from edgefleet.server.readiness.schemas import RequirementIn
from edgefleet.server.readiness.tables import DeviceRequirement


async def replace(
    db: AsyncSession, caller: Caller, project: Project, items: list[RequirementIn]
) -> list[DeviceRequirement]:
    caller.require(project.pk, Permission.MANAGE_DEVICES, f"project {project.name!r}")
    await db.execute(delete(DeviceRequirement).where(DeviceRequirement.project_pk == project.pk))
    rows = [
        DeviceRequirement(
            id=new_id("r"),
            project_pk=project.pk,
            selector=str(item.selector),
            peripherals=list(item.peripherals),
        )
        for item in items
    ]
    db.add_all(rows)
    await db.commit()
    return rows


async def of_project(db: AsyncSession, project_pk: int) -> list[DeviceRequirement]:
    rows = await db.scalars(
        select(DeviceRequirement)
        .where(DeviceRequirement.project_pk == project_pk)
        .order_by(DeviceRequirement.pk)
    )
    return list(rows)


async def rules(db: AsyncSession, project_pks: set[int] | None) -> dict[int, list[Rule]]:
    """{project pk: its rules}, one query for any number of projects (``None``: all)."""
    found: dict[int, list[Rule]] = defaultdict(list)
    if project_pks is not None and not project_pks:
        return found
    query = select(DeviceRequirement).order_by(DeviceRequirement.pk)
    if project_pks is not None:
        query = query.where(DeviceRequirement.project_pk.in_(project_pks))
    rows = await db.scalars(query)
    for row in rows:
        found[row.project_pk].append(
            Rule(parse_selector(row.selector), tuple(str(p) for p in row.peripherals))
        )
    return found
