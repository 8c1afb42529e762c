"""Local actions a device reports are stored once as device events, even when
the same report arrives again (its acknowledgement was lost)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.agent_session import DeviceRef
from edgefleet.server.devices.local_actions import KIND, store
from edgefleet.server.events.tables import Event
from edgefleet.wire.local import LocalAction

DEVICE = DeviceRef(pk=1, id="dev1", name="pi-1", project_pk=7)


async def test_a_repeated_report_is_stored_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    then = datetime.now(UTC) - timedelta(hours=2)  # made during an outage
    actions = [
        LocalAction(id="a1", time=then, action="stop", job_id="job1", service="web"),
        LocalAction(id="a2", time=then, action="app-run", job_id="local-mine"),
    ]
    async with sessions() as db:
        assert await store(db, DEVICE, actions) == ["a1", "a2"]
    async with sessions() as db:
        assert await store(db, DEVICE, [*actions, actions[0]]) == ["a1", "a2", "a1"]
    async with sessions() as db:
        events = list(await db.scalars(select(Event).where(Event.kind == KIND)))
    assert sorted(e.data["id"] for e in events) == ["a1", "a2"]
    stop = next(e for e in events if e.data["id"] == "a1")
    assert stop.device_id == "dev1" and stop.project_pk == 7
    assert stop.job_id is None  # job1 is not a job of the device's project
    assert "stopped (held locally)" in stop.message and "web of job1" in stop.message
