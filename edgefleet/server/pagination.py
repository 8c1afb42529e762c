"""Cursor pagination shared by every list endpoint: ``{"items": [...], "next": cursor|null}``.

Cursors are opaque to clients (base64 of the last row's integer key), stable
under inserts, and cheap (an indexed ``pk > n``), unlike offsets.
"""

from __future__ import annotations

import base64
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from edgefleet.server.errors import Invalid

T = TypeVar("T")

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


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = 100,
    cursor: Annotated[str | None, Query(description="'next' from the previous page")] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor))


def next_cursor(pks: list[int], limit: int) -> str | None:
    """Given the pks of up to ``limit + 1`` fetched rows, the cursor for the next page."""
    if len(pks) <= limit:
        return None
    return encode_cursor(pks[limit - 1])
