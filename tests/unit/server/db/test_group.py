"""PerDatabase: one object per database, made on first use, which does not
keep its database alive."""

from __future__ import annotations

import gc
import weakref

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.db.group import PerDatabase

Sessions = async_sessionmaker[AsyncSession]


class Writer:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions


def test_one_per_database_made_on_first_use() -> None:
    made: list[Writer] = []

    def make(sessions: Sessions) -> Writer:
        made.append(Writer(sessions))
        return made[-1]

    per = PerDatabase(make)
    first, second = async_sessionmaker[AsyncSession](), async_sessionmaker[AsyncSession]()
    assert per.of(first) is per.of(first)
    assert per.of(second) is not per.of(first)
    assert len(made) == 2
    assert per.of(first).sessions.kw == first.kw  # bound to (a proxy of) its own


def test_a_writer_does_not_keep_its_database_alive() -> None:
    per = PerDatabase(Writer)
    sessions = async_sessionmaker[AsyncSession]()
    writer = per.of(sessions)
    gone = weakref.ref(sessions)
    del sessions
    gc.collect()
    assert gone() is None
    assert writer is not None
