"""Project volumes: declare, list, and bind them into a job's spec.

A Compose file mounts one as ``volumes: {NAME: {external: true,
x-edgefleet-project-volume: true}}``. When a job is created or changed,
:func:`bind` checks that NAME is a volume of the job's own project and writes
its engine name, ``ef-proj-<project id>-NAME``, into the job's resolved spec.
A Compose file cannot give that name itself (``ef-`` names are refused by the
device policy, and a project volume may carry no ``name:``), so a job never
mounts another project's volume.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.db.base import new_id
from edgefleet.server.errors import Conflict, Invalid, NotFound
from edgefleet.server.pagination import Page, PageParams, keyset_page
from edgefleet.server.projects.tables import Project
from edgefleet.server.volumes.tables import ProjectVolume
from edgefleet.spec.model import AppSpec


def engine_name(project: Project, name: str) -> str:
    return f"ef-proj-{project.id}-{name}"


async def create(db: AsyncSession, caller: Caller, project: Project, name: str) -> ProjectVolume:
    caller.require(project.pk, Permission.MANAGE_APPS, f"project {project.name!r}")
    exists = await db.scalar(
        select(ProjectVolume.pk).where(
            ProjectVolume.project_pk == project.pk, ProjectVolume.name == name
        )
    )
    if exists is not None:
        raise Conflict(f"project {project.name} already has a volume {name!r}", field="name")
    row = ProjectVolume(id=new_id("v"), project_pk=project.pk, name=name, created_by=caller.name)
    db.add(row)
    await db.commit()
    return row


async def listed(db: AsyncSession, project: Project, page: PageParams) -> Page[ProjectVolume]:
    query = select(ProjectVolume).where(ProjectVolume.project_pk == project.pk)
    return await keyset_page(db, query, ProjectVolume.pk, page)


async def find(db: AsyncSession, project: Project, name: str) -> ProjectVolume:
    row = await db.scalar(
        select(ProjectVolume).where(
            ProjectVolume.project_pk == project.pk, ProjectVolume.name == name
        )
    )
    if row is None:
        raise NotFound(f"project {project.name} has no volume {name!r}", field="name")
    return row


async def forget(db: AsyncSession, row: ProjectVolume) -> None:
    await db.delete(row)
    await db.commit()


async def bind(db: AsyncSession, project_pk: int, spec: AppSpec) -> None:
    """Name every project volume of ``spec`` after the job's project (in place);
    422 naming the volume when the project has no such volume."""
    wanted = [key for key, volume in spec.volumes.items() if volume.project]
    if not wanted:
        return
    project = await db.scalar(select(Project).where(Project.pk == project_pk))
    assert project is not None
    known = set(
        await db.scalars(
            select(ProjectVolume.name).where(
                ProjectVolume.project_pk == project_pk, ProjectVolume.name.in_(wanted)
            )
        )
    )
    for key in wanted:
        if key not in known:
            raise Invalid(
                f"volumes.{key}: project {project.name} has no volume {key!r}; create it with "
                f"POST /projects/{project.name}/volumes",
                field=f"volumes.{key}",
            )
        spec.volumes[key].name = engine_name(project, key)
