"""Cursor pagination shared by every list endpoint: ``{"items": [...], "next": cursor|null}``.

Cursors are opaque to clients (base64 of the last row's integer key), stable
under inserts, and cheap (an indexed ``pk > n``), unlike offsets.

Services page with :func:`keyset_page` (one entity per row) or
:func:`keyset_rows` (joined rows): they add the key condition, the order and
the one-row look-ahead that tells whether a next page exists, so no list
writes that arithmetic out again. Routes only map the page's items to
their output models.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Annotated, Any, Generic, Protocol, TypeVar, TypeVarTuple

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select, SQLColumnExpression
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.errors import Invalid

T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K", bound="_Keyed")
Rows = TypeVarTuple("Rows")

MAX_LIMIT = 1000


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = None


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"pk:{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "pk":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("cursor is not one this server issued", field="cursor") from exc


class PageParams(BaseModel):
    limit: int
    after: int


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = 100,
    cursor: Annotated[str | None, Query(description="'next' from the previous page")] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor))


def next_cursor(pks: list[int], limit: int) -> str | None:
    """Given the pks of up to ``limit + 1`` fetched rows, the cursor for the next page."""
    if len(pks) <= limit:
        return None
    return encode_cursor(pks[limit - 1])


class _Keyed(Protocol):
    """A row with the integer key its cursor is made of (the ``Keyed`` tables)."""

    @property
    def pk(self) -> int: ...


def _window(
    query: Select[*Rows], pk: SQLColumnExpression[int], page: PageParams, newest_first: bool
) -> Select[*Rows]:
    """The page's slice of ``query``: after the cursor's key in key order, plus one
    row to learn whether another page follows. Newest first walks the key down
    (an empty cursor starts at the top)."""
    if newest_first:
        if page.after:
            query = query.where(pk < page.after)
        return query.order_by(pk.desc()).limit(page.limit + 1)
    return query.where(pk > page.after).order_by(pk).limit(page.limit + 1)


async def keyset_page(
    db: AsyncSession,
    query: Select[K],
    pk: SQLColumnExpression[int],
    page: PageParams,
    *,
    newest_first: bool = False,
) -> Page[K]:
    """One page of a one-entity query (``select(Table).where(...)``, with no order or
    limit of its own) and the cursor for the next one."""
    rows: list[K] = list(await db.scalars(_window(query, pk, page, newest_first)))
    return Page[
        Any
    ].model_construct(  # items are rows, not validated
        items=rows[: page.limit], next=next_cursor([r.pk for r in rows], page.limit)
    )


async def keyset_rows(
    db: AsyncSession,
    query: Select[*tuple[Any, ...]],
    pk: SQLColumnExpression[int],
    page: PageParams,
    key: Callable[[Any], int],
    *,
    newest_first: bool = False,
) -> Page[Any]:
    """One page of a query of several columns or entities; ``key`` picks a row's
    cursor key out of it (e.g. ``lambda row: row[0].pk``)."""
    rows = list((await db.execute(_window(query, pk, page, newest_first))).all())
    return Page[Any].model_construct(
        items=rows[: page.limit], next=next_cursor([key(r) for r in rows], page.limit)
    )
