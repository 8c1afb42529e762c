"""among(): the same rows as IN on both stores, and on PostgreSQL one SQL text
whatever the number of values (a new text per length defeated psycopg's
statement cache and made it re-parse and re-prepare at every group size)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, MetaData, String, Table, event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from edgefleet.server.db.among import among
from edgefleet.server.db.engine import async_url, create_engine

_META = MetaData()
_THINGS = Table(
    "among_things",
    _META,
    Column("pk", BigInteger, primary_key=True),
    Column("name", String(64)),
)


@pytest.fixture
async def engine(database_url: str | None, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(async_url(database_url, tmp_path))
    async with engine.begin() as conn:
        await conn.run_sync(_META.create_all)
        await conn.execute(insert(_THINGS), [{"pk": i, "name": f"n{i}"} for i in range(1, 11)])
    yield engine
    await engine.dispose()


async def test_among_finds_what_in_finds_on_both_stores(engine: AsyncEngine) -> None:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "among_things" in statement:
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    async with AsyncSession(engine) as db:
        for values in ([], [3], [1, 5, 99], list(range(1, 300))):
            found = set(
                await db.scalars(select(_THINGS.c.pk).where(among(db, _THINGS.c.pk, values)))
            )
            assert found == {v for v in values if 1 <= v <= 10}
        names = set(
            await db.scalars(select(_THINGS.c.name).where(among(db, _THINGS.c.name, {"n2", "x"})))
        )
        assert names == {"n2"}
    by_number = seen[:4]
    if engine.dialect.name == "postgresql":
        assert len(set(by_number)) == 1, by_number  # one statement for 0, 1, 3 and 299 values
    else:
        assert len(set(by_number)) > 1  # SQLite keeps its IN list, as before
