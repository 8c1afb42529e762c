"""Applied generations on a real SQLite file: reports that come together are
one transaction, each row gets its device's latest report, and a device
deleted meanwhile does not fail the others."""

from __future__ import annotations

import asyncio

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.devices.tables import Device
from edgefleet.server.gateway import generations
from tests.support.commits import counting_commits
from tests.support.device_rows import add_devices

Sessions = async_sessionmaker[AsyncSession]


async def _applied(sessions: Sessions) -> dict[int, tuple[int, bool]]:
    async with sessions() as db:
        rows = await db.execute(
            select(Device.pk, Device.applied_generation, Device.runtime_healthy)
        )
        return {pk: (generation, bool(healthy)) for pk, generation, healthy in rows}


async def test_a_burst_of_reports_is_written_in_one_transaction(sessions: Sessions) -> None:
    """After a fan-out every agent reports at once: they must not queue a
    transaction each for SQLite's one writer (each holding a pool connection)."""
    async with sessions() as db:
        pks = [d.pk for d in await add_devices(db, 60)]
        await db.commit()
    with counting_commits(sessions) as commits:
        await asyncio.gather(*(generations.note(sessions, pk, 7, pk % 2 == 0) for pk in pks))
    assert commits.count <= 2  # the first alone, at most; everyone who came meanwhile together
    assert await _applied(sessions) == {pk: (7, pk % 2 == 0) for pk in pks}


async def test_a_devices_latest_report_stands(sessions: Sessions) -> None:
    async with sessions() as db:
        [device] = await add_devices(db, 1)
        await db.commit()
    await asyncio.gather(
        generations.note(sessions, device.pk, 3, False),
        generations.note(sessions, device.pk, 4, True),
    )
    assert await _applied(sessions) == {device.pk: (4, True)}


async def test_a_deleted_device_does_not_fail_the_others(sessions: Sessions) -> None:
    async with sessions() as db:
        kept, gone = (d.pk for d in await add_devices(db, 2))
        await db.execute(delete(Device).where(Device.pk == gone))
        await db.commit()
    await asyncio.gather(
        generations.note(sessions, gone, 5, True),
        generations.note(sessions, kept, 5, True),
    )
    assert await _applied(sessions) == {kept: (5, True)}
