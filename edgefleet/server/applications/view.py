"""An application and its versions as the API and the portal show them: the
project's name beside its id, the version list newest last, and a version's
spec only where the caller asked for one version in full."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.applications import service
from edgefleet.server.applications.schemas import ApplicationOut, VersionOut
from edgefleet.server.applications.tables import Application, AppVersion
from edgefleet.server.projects import service as projects


async def application(db: AsyncSession, app: Application) -> ApplicationOut:
    project = (await projects.names(db, {app.project_pk}))[app.project_pk]
    names = [v.version for v in await service.versions(db, app)]
    return ApplicationOut(
        id=app.id,
        name=app.name,
        project=project.name,
        project_id=project.id,
        description=app.description,
        created_at=app.created_at,
        versions=names,
        latest=names[-1] if names else None,
    )


def version(row: AppVersion, full: bool) -> VersionOut:
    """``full``: with the spec and the Compose text (one version); lists leave them out."""
    return VersionOut(
        id=row.id,
        version=row.version,
        created_at=row.created_at,
        created_by=row.created_by,
        services=sorted((row.spec or {}).get("services", {}) or {}),
        warnings=row.warnings,
        spec=row.spec if full else None,
        compose=row.compose if full else None,
    )
