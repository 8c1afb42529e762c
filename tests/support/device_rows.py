"""Device rows for unit tests that talk to a real database without enrolling."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.devices.tables import Device
from edgefleet.server.projects.tables import Project


async def add_devices(db: AsyncSession, count: int) -> list[Device]:
    """``count`` devices of one new project, flushed (their pks are known)."""
    project = Project(id="p1", name="north")
    db.add(project)
    await db.flush()
    devices = [
        Device(id=f"d{n}", project_pk=project.pk, name=f"pi-{n}", credential_hash=f"h{n}")
        for n in range(count)
    ]
    db.add_all(devices)
    await db.flush()
    return devices
