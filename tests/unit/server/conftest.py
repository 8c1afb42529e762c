"""A real database for server cores that need one: a temporary SQLite file built
with the server's own engine helpers (the same pragmas and pool as production),
its schema created from the tables' metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.db.engine import async_url, create_engine, sessionmaker
from edgefleet.server.db.registry import metadata


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(async_url(None, tmp_path))
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    try:
        yield sessionmaker(engine)
    finally:
        await engine.dispose()
