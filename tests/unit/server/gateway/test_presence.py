"""Presence rows on a real SQLite file: a flush extends this replica's rows of
the devices given (and their last seen), nobody else's; a clean disconnect
clears this replica's row only (the device may already be held elsewhere)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.db.base import utcnow
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.gateway import presence
from tests.support.commits import counting_commits
from tests.support.device_rows import add_devices

Sessions = async_sessionmaker[AsyncSession]


async def _fleet(sessions: Sessions) -> list[int]:
    """Three devices online since a minute ago, expiring in 5 s: two on replica
    "here", one on "there"."""
    async with sessions() as db:
        devices = await add_devices(db, 3)
        then = utcnow() - timedelta(minutes=1)
        for device, replica in zip(devices, ["here", "here", "there"], strict=True):
            device.last_seen = then
            db.add(
                Presence(
                    device_pk=device.pk,
                    replica=replica,
                    connected_at=then,
                    expires_at=utcnow() + timedelta(seconds=5),
                )
            )
        await db.commit()
        return [d.pk for d in devices]


async def _rows(sessions: Sessions) -> dict[int, tuple[str, float]]:
    """device pk -> (replica, seconds until its presence expires)"""
    async with sessions() as db:
        rows = await db.scalars(select(Presence))
        now = utcnow()
        return {r.device_pk: (r.replica, (r.expires_at - now).total_seconds()) for r in rows}


async def test_a_flush_extends_only_this_replicas_rows_of_the_devices_seen(
    sessions: Sessions,
) -> None:
    first, second, elsewhere = await _fleet(sessions)
    await presence.extend(sessions, "here", [first, elsewhere], ttl=90)
    rows = await _rows(sessions)
    assert 85 < rows[first][1] <= 90  # extended
    assert rows[second][1] <= 5  # not seen since the last flush: left to expire
    assert rows[elsewhere][1] <= 5  # held by another replica: not ours to extend
    async with sessions() as db:
        seen = {pk: last for pk, last in await db.execute(select(Device.pk, Device.last_seen))}
    assert utcnow() - seen[first] < timedelta(seconds=5)
    assert utcnow() - seen[second] > timedelta(seconds=50)


async def test_a_clean_disconnect_clears_only_this_replicas_row(sessions: Sessions) -> None:
    first, _second, elsewhere = await _fleet(sessions)
    await presence.clear(sessions, "here", first)
    await presence.clear(sessions, "here", elsewhere)  # reconnected to "there" meanwhile
    rows = await _rows(sessions)
    assert first not in rows
    assert rows[elsewhere][0] == "there"


async def test_a_flush_of_many_devices_goes_in_chunks(sessions: Sessions) -> None:
    pks = await _fleet(sessions)
    many = [*pks, *range(10_000, 10_000 + presence.CHUNK + 5)]  # unknown pks match no row
    await presence.extend(sessions, "here", many, ttl=60)
    rows = await _rows(sessions)
    assert rows[pks[0]][1] > 55 and rows[pks[1]][1] > 55


async def _expiry_and_last_seen(sessions: Sessions) -> dict[int, tuple[object, object]]:
    async with sessions() as db:
        rows = await db.execute(
            select(Presence.device_pk, Presence.expires_at, Device.last_seen).join(
                Device, Device.pk == Presence.device_pk
            )
        )
        return {pk: (expires, seen) for pk, expires, seen in rows}


async def test_a_flush_rewrites_only_rows_running_out_and_notes_last_seen_once_a_minute(
    sessions: Sessions,
) -> None:
    """At 10,000 devices a flush that rewrote every row each time held SQLite's
    one writer for seconds: rows with most of their time left, and devices
    whose last seen was noted within the minute, are not written again."""
    first, second, _ = await _fleet(sessions)
    await presence.extend(sessions, "here", [first, second], ttl=90)
    extended = await _expiry_and_last_seen(sessions)
    await asyncio.sleep(0.05)
    await presence.extend(sessions, "here", [first, second], ttl=90)
    again = await _expiry_and_last_seen(sessions)
    assert again[first] == extended[first]  # 90 s left of 90: not rewritten
    assert again[second] == extended[second]
    await presence.extend(sessions, "here", [first], ttl=200)  # 90 s left of 200: due
    rows = await _rows(sessions)
    assert rows[first][1] > 190


async def test_disconnects_at_once_are_written_in_one_transaction(sessions: Sessions) -> None:
    """A storm of clean disconnects must not queue one transaction per device
    for SQLite's one writer: those that come together commit together."""
    async with sessions() as db:
        devices = await add_devices(db, 40)
        now = utcnow()
        for device in devices:
            db.add(
                Presence(
                    device_pk=device.pk,
                    replica="here",
                    connected_at=now,
                    expires_at=now + timedelta(seconds=30),
                )
            )
        await db.commit()
    with counting_commits(sessions) as commits:
        await asyncio.gather(*(presence.clear(sessions, "here", d.pk) for d in devices))
    assert await _rows(sessions) == {}
    assert commits.count <= 2  # the first alone, at most; everyone who came meanwhile together
    async with sessions() as db:
        seen = list(await db.scalars(select(Device.last_seen)))
    assert all(s is not None and utcnow() - s < timedelta(seconds=5) for s in seen)
