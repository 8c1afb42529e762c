"""Group commit: many callers' small writes in one transaction.

SQLite has one writer, and a connection waiting for it (``busy_timeout``)
keeps its pool slot. A burst of one-row writes, a transaction each, takes
every slot: after a fan-out to 1,000 devices each agent reported its new
applied generation in its own transaction, the pool's 40 connections were
all queued for the write lock, and API reads waited up to 1.4 s for a
connection (issue 16). Written here instead, the first caller's item is
written at once and whoever comes while that transaction runs goes in the
next one: one connection and one commit per group, however many callers.

Each caller returns once its item is committed (a write still means durable),
or raises what its group's write raised.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Generic, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]

Write = Callable[[list[T]], Awaitable[None]]
"""Writes a group of items in one transaction, committed when it returns."""


class GroupWriter(Generic[T]):
    """Callers :meth:`submit` items; ``write`` gets them in groups, in order."""

    def __init__(self, write: Write[T], name: str) -> None:
        self._write = write
        self._name = name
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Returns once ``item`` is written, in one transaction with the other
        items of the moment; raises what that transaction raised."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._drain(), name=self._name)
        await done

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._write([item for item, _ in batch])
            except Exception as exc:  # not hidden: each caller raises it
                _settle(batch, exc)
            except BaseException:  # cancelled at shutdown: nobody waits forever
                _settle(batch, None)
                raise
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)


def _settle(batch: list[tuple[T, asyncio.Future[None]]], exc: Exception | None) -> None:
    """End the waits of a group that was not written: with ``exc``, or cancelled."""
    for _, done in batch:
        if done.done():
            continue
        if exc is None:
            done.cancel()
        else:
            done.set_exception(exc)


class PerDatabase(Generic[T]):
    """A :class:`GroupWriter` for each database (its sessionmaker), made on its
    first item: ``write(sessions, items)`` writes a group there. A writer does
    not keep its database alive (tests make many)."""

    def __init__(self, write: Callable[[Sessions, list[T]], Awaitable[None]], name: str) -> None:
        self._write = write
        self._name = name
        self._writers: weakref.WeakKeyDictionary[Sessions, GroupWriter[T]] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, sessions: Sessions, item: T) -> None:
        """:meth:`GroupWriter.submit` on ``sessions``' writer."""
        writer = self._writers.get(sessions)
        if writer is None:  # bound to a proxy: a strong reference would keep its key alive
            write = partial(self._write, cast(Sessions, weakref.proxy(sessions)))
            writer = self._writers[sessions] = GroupWriter(write, self._name)
        await writer.submit(item)
