"""The scheduler lease (``scheduler/lease.py``) on a real SQLite file.

Time comes from two places: a real short TTL where the wall clock is enough
(expiry, takeover), and the module's clock replaced by a settable one where the
boundary must be exact ("expired" means strictly past ``expires_at``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.scheduler import lease
from edgefleet.server.scheduler.tables import Lease

Sessions = async_sessionmaker[AsyncSession]
NAME = "scheduler"


async def acquire(sessions: Sessions, holder: str, ttl: float = 30, name: str = NAME) -> bool:
    async with sessions() as db:
        return await lease.acquire(db, name, holder, ttl)


async def release(sessions: Sessions, holder: str, name: str = NAME) -> None:
    async with sessions() as db:
        await lease.release(db, name, holder)


async def rows(sessions: Sessions) -> dict[str, tuple[str, datetime]]:
    async with sessions() as db:
        result = await db.execute(select(Lease.name, Lease.holder, Lease.expires_at))
        return {name: (holder, expires) for name, holder, expires in result.all()}


class Clock:
    """Stands in for ``utcnow`` in the lease module: time moves only when told."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(lease, "utcnow", fake)
    return fake


async def test_the_first_holder_takes_a_free_lease_for_ttl_seconds(
    sessions: Sessions, clock: Clock
) -> None:
    assert await acquire(sessions, "replica-a", ttl=15)
    assert await rows(sessions) == {NAME: ("replica-a", clock.now + timedelta(seconds=15))}


async def test_renewing_extends_the_expiry(sessions: Sessions, clock: Clock) -> None:
    assert await acquire(sessions, "replica-a", ttl=15)
    clock.advance(10)
    assert await acquire(sessions, "replica-a", ttl=15)
    assert await rows(sessions) == {NAME: ("replica-a", clock.now + timedelta(seconds=15))}


async def test_another_holder_is_refused_while_the_lease_is_live_and_changes_nothing(
    sessions: Sessions, clock: Clock
) -> None:
    assert await acquire(sessions, "replica-a", ttl=15)
    before = await rows(sessions)
    clock.advance(14)
    assert not await acquire(sessions, "replica-b", ttl=15)
    assert await rows(sessions) == before


async def test_the_lease_expires_strictly_after_expires_at(
    sessions: Sessions, clock: Clock
) -> None:
    assert await acquire(sessions, "replica-a", ttl=15)
    clock.advance(15)  # exactly at expires_at: still held
    assert not await acquire(sessions, "replica-b", ttl=15)
    clock.advance(0.001)
    assert await acquire(sessions, "replica-b", ttl=15)
    assert (await rows(sessions))[NAME][0] == "replica-b"


async def test_a_holder_that_stopped_renewing_loses_the_lease_for_good(
    sessions: Sessions,
) -> None:
    """Real time: a 0.2 s lease lapses, another replica takes over, and the
    old holder coming back finds it taken (no split brain)."""
    assert await acquire(sessions, "replica-a", ttl=0.2)
    assert not await acquire(sessions, "replica-b", ttl=0.2)
    await asyncio.sleep(0.3)
    assert await acquire(sessions, "replica-b", ttl=30)
    assert not await acquire(sessions, "replica-a", ttl=30)
    assert (await rows(sessions))[NAME][0] == "replica-b"


async def test_release_hands_the_lease_over_at_once(sessions: Sessions) -> None:
    assert await acquire(sessions, "replica-a", ttl=3600)
    await release(sessions, "replica-a")
    assert await acquire(sessions, "replica-b", ttl=3600)
    assert (await rows(sessions))[NAME][0] == "replica-b"


async def test_release_by_someone_else_is_ignored(sessions: Sessions) -> None:
    assert await acquire(sessions, "replica-a", ttl=3600)
    before = await rows(sessions)
    await release(sessions, "replica-b")
    assert await rows(sessions) == before
    assert not await acquire(sessions, "replica-b", ttl=3600)


async def test_releasing_a_lease_nobody_took_writes_nothing(sessions: Sessions) -> None:
    await release(sessions, "replica-a")
    assert await rows(sessions) == {}


async def test_leases_by_name_are_independent(sessions: Sessions) -> None:
    assert await acquire(sessions, "replica-a", name="scheduler")
    assert await acquire(sessions, "replica-b", name="retention")
    assert not await acquire(sessions, "replica-b", name="scheduler")
    assert not await acquire(sessions, "replica-a", name="retention")
    assert {n: h for n, (h, _) in (await rows(sessions)).items()} == {
        "scheduler": "replica-a",
        "retention": "replica-b",
    }


async def test_replicas_racing_for_a_free_lease_elect_exactly_one(sessions: Sessions) -> None:
    holders = [f"replica-{i}" for i in range(6)]
    won = await asyncio.gather(*(acquire(sessions, h, ttl=30) for h in holders))
    assert sum(won) == 1
    winner = holders[won.index(True)]
    assert (await rows(sessions))[NAME][0] == winner


async def test_replicas_racing_for_an_expired_lease_elect_exactly_one(
    sessions: Sessions, clock: Clock
) -> None:
    assert await acquire(sessions, "replica-old", ttl=5)
    clock.advance(60)
    holders = [f"replica-{i}" for i in range(6)]
    won = await asyncio.gather(*(acquire(sessions, h, ttl=5) for h in holders))
    assert sum(won) == 1
    assert (await rows(sessions))[NAME][0] == holders[won.index(True)]


class Ticks:
    """A monotonic clock for :class:`lease.Holding`, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_held_lease_is_renewed_at_a_third_of_its_ttl_not_every_tick(
    sessions: Sessions, clock: Clock
) -> None:
    ticks = Ticks()
    writes: list[str] = []

    def counted() -> AsyncSession:
        writes.append("session")
        return sessions()

    mine = lease.Holding(NAME, "replica-a", ttl=9, clock=ticks)
    assert await mine.hold(counted) and len(writes) == 1
    first_expiry = (await rows(sessions))[NAME][1]
    for _ in range(2):  # 1 s ticks within a third of the TTL: answered from memory
        ticks.now += 1
        clock.advance(1)
        assert await mine.hold(counted)
    assert len(writes) == 1 and (await rows(sessions))[NAME][1] == first_expiry
    ticks.now += 1.5  # 3.5 s since the renewal: due
    clock.advance(1.5)
    assert await mine.hold(counted) and len(writes) == 2
    assert (await rows(sessions))[NAME][1] == first_expiry + timedelta(seconds=3.5)
    # Another replica cannot take it meanwhile, and asks the database every time.
    theirs = lease.Holding(NAME, "replica-b", ttl=9, clock=ticks)
    assert not await theirs.hold(counted) and not await theirs.hold(counted)
    assert len(writes) == 4


async def test_a_released_lease_is_asked_for_again(sessions: Sessions, clock: Clock) -> None:
    ticks = Ticks()
    mine = lease.Holding(NAME, "replica-a", ttl=9, clock=ticks)
    assert await mine.hold(sessions)
    await release(sessions, "replica-a")
    mine.forget()
    assert await acquire(sessions, "replica-b", ttl=9)  # taken over once released
    assert not await mine.hold(sessions)
