"""A real database for server cores that need one: a temporary SQLite file built
with the server's own engine helpers (the same pragmas and pool as production),
its schema created from the tables' metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.db.engine import async_url, create_engine, sessionmaker
from edgefleet.server.db.registry import metadata


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with store_sessions(None, tmp_path) as made:
        yield made


@asynccontextmanager
async def store_sessions(
    database_url: str | None, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A fresh schema on SQLite (``None``) or on the given PostgreSQL database."""
    engine = create_engine(async_url(database_url, tmp_path))
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    try:
        yield sessionmaker(engine)
    finally:
        await engine.dispose()
