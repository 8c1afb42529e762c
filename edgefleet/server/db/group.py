"""One object per database, for writers that group callers' writes.

A writer that puts many callers' writes in one transaction
(:class:`~edgefleet.server.gateway.grouped.Grouped`) must be one per
database: :class:`PerDatabase` makes it on first use for a sessionmaker,
bound to a weak proxy of it, so a writer never keeps its database alive
(tests make many).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Generic, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

W = TypeVar("W")
Sessions = async_sessionmaker[AsyncSession]


class PerDatabase(Generic[W]):
    def __init__(self, make: Callable[[Sessions], W]) -> None:
        self._make = make
        self._made: weakref.WeakKeyDictionary[Sessions, W] = weakref.WeakKeyDictionary()

    def of(self, sessions: Sessions) -> W:
        """``sessions``' own, made by ``make`` on first use."""
        made = self._made.get(sessions)
        if made is None:  # a proxy: a strong reference from the value would keep its key alive
            made = self._made[sessions] = self._make(cast(Sessions, weakref.proxy(sessions)))
        return made
