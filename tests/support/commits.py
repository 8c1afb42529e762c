"""Counting a database's commits: how tests check that writes arriving
together share a transaction (group commit) or are split as meant."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


@dataclass
class Commits:
    count: int = 0


@contextmanager
def counting_commits(sessions: async_sessionmaker[AsyncSession]) -> Iterator[Commits]:
    """Counts the commits made through ``sessions``' engine inside the block."""
    counted = Commits()

    def commit(_connection: object) -> None:
        counted.count += 1

    engine = sessions.kw["bind"].sync_engine
    event.listen(engine, "commit", commit)
    try:
        yield counted
    finally:
        event.remove(engine, "commit", commit)
