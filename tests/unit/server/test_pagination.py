"""Keyset pagination (``server/pagination.py``) on a real SQLite file: walking
every page in both directions returns each row exactly once, in key order,
with the last page's cursor empty, and filters in the caller's query hold."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.errors import Invalid
from edgefleet.server.pagination import (
    PageParams,
    decode_cursor,
    encode_cursor,
    keyset_page,
    keyset_rows,
)
from edgefleet.server.projects.tables import Project

Sessions = async_sessionmaker[AsyncSession]


async def seed(sessions: Sessions, count: int) -> list[int]:
    async with sessions() as db:
        rows = [Project(id=f"p{i:011d}", name=f"project-{i}") for i in range(count)]
        db.add_all(rows)
        await db.commit()
        return [p.pk for p in rows]


async def walk(sessions: Sessions, limit: int, newest_first: bool = False) -> list[list[int]]:
    pages: list[list[int]] = []
    cursor: str | None = None
    async with sessions() as db:
        while True:
            params = PageParams(limit=limit, after=decode_cursor(cursor))
            page = await keyset_page(
                db, select(Project), Project.pk, params, newest_first=newest_first
            )
            pages.append([p.pk for p in page.items])
            cursor = page.next
            if cursor is None:
                return pages


async def test_pages_cover_every_row_once_in_order(sessions: Sessions) -> None:
    pks = await seed(sessions, 7)
    pages = await walk(sessions, 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [pk for page in pages for pk in page] == sorted(pks)


async def test_exact_multiple_has_no_empty_trailing_page(sessions: Sessions) -> None:
    await seed(sessions, 6)
    assert [len(p) for p in await walk(sessions, 3)] == [3, 3]


async def test_newest_first_walks_the_key_down(sessions: Sessions) -> None:
    pks = await seed(sessions, 5)
    pages = await walk(sessions, 2, newest_first=True)
    assert [pk for page in pages for pk in page] == sorted(pks, reverse=True)
    assert [len(p) for p in pages] == [2, 2, 1]


async def test_empty_table_is_one_empty_page(sessions: Sessions) -> None:
    assert await walk(sessions, 10) == [[]]


async def test_rows_variant_keeps_the_callers_filter(sessions: Sessions) -> None:
    pks = await seed(sessions, 6)
    query = select(Project.pk, Project.name).where(Project.name != "project-2")
    async with sessions() as db:
        first = await keyset_rows(
            db, query, Project.pk, PageParams(limit=4, after=0), key=lambda row: row[0]
        )
        assert [r[0] for r in first.items] == [pks[0], pks[1], pks[3], pks[4]]
        assert first.next == encode_cursor(pks[4])
        rest = await keyset_rows(
            db, query, Project.pk, PageParams(limit=4, after=pks[4]), key=lambda row: row[0]
        )
    assert [r[1] for r in rest.items] == ["project-5"]
    assert rest.next is None


def test_foreign_cursor_is_refused() -> None:
    with pytest.raises(Invalid):
        decode_cursor(encode_cursor(5).swapcase() + "!")
