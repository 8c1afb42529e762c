"""The SQLite driver: one trip to aiosqlite's thread per statement, and the
DBAPI behaviour SQLAlchemy relies on unchanged (rows, counts, ids, errors,
transactions, streamed results). A real SQLite file through the server's engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from edgefleet.server.db.engine import async_url, create_engine
from edgefleet.server.db.sqlite_driver import OneTripConnection


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(async_url(None, tmp_path))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (pk INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call aiosqlite runs on its thread, by name."""
    made: list[str] = []
    original: Any = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return made


async def test_the_server_engine_uses_the_one_trip_driver(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.dbapi_connection
        assert isinstance(driver, OneTripConnection)
        # the connect-time pragmas went through it
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1


async def test_a_select_is_one_trip(engine: AsyncEngine, trips: list[str]) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # the connection's own start-up
        trips.clear()
        rows = (await conn.execute(text("SELECT :a, :b"), {"a": 1, "b": "x"})).all()
        assert [tuple(r) for r in rows] == [(1, "x")]
        assert trips == ["_execute"]


async def test_rows_counts_ids_and_returning(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        inserted = await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        assert inserted.rowcount == 1 and inserted.lastrowid == 1
        many = await conn.execute(
            text("INSERT INTO t (name) VALUES (:n)"), [{"n": "b"}, {"n": "c"}, {"n": "d"}]
        )
        assert many.rowcount == 3
        returned = await conn.execute(
            text("INSERT INTO t (name) VALUES ('e'), ('f') RETURNING pk, name")
        )
        assert [tuple(r) for r in returned] == [(5, "e"), (6, "f")]
        updated = await conn.execute(text("UPDATE t SET name = name || '!' WHERE pk > 3"))
        assert updated.rowcount == 3
        assert (await conn.execute(text("SELECT count(*) FROM t WHERE pk > 99"))).scalar() == 0
        assert (await conn.execute(text("SELECT name FROM t WHERE pk > 99"))).first() is None
        one = await conn.execute(text("SELECT pk FROM t ORDER BY pk"))
        assert one.fetchmany(2) == [(1,), (2,)] and len(one.fetchall()) == 4


async def test_errors_are_sqlalchemys_and_leave_nothing(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (name) VALUES ('taken')"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (name) VALUES ('new')"))
            await conn.execute(text("INSERT INTO t (name) VALUES ('taken')"))
    with pytest.raises(OperationalError, match="no such table"):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT * FROM missing"))
    async with engine.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM t"))).scalars().all()
    assert names == ["taken"]  # the failed transaction's first insert rolled back


async def test_streamed_results_still_work(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO t (name) VALUES (:n)"), [{"n": str(i)} for i in range(250)]
        )
    async with engine.connect() as conn:
        streamed = await conn.stream(text("SELECT pk FROM t ORDER BY pk"))
        seen = [row[0] async for row in streamed]
    assert seen == list(range(1, 251))
