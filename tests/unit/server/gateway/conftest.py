"""A server context on a real SQLite file, without the server around it:
for the gateway's grouped reads and writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgefleet.server import assembly
from edgefleet.server.bus.base import create_bus
from edgefleet.server.context import ServerContext
from edgefleet.server.db.engine import async_url, create_engine
from edgefleet.server.db.registry import metadata
from edgefleet.server.settings import ServerSettings


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[ServerContext]:
    engine = create_engine(async_url(None, tmp_path))
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    built, _hub = assembly.build(
        ServerSettings(data_dir=tmp_path, replica_id="here"), engine, create_bus("memory", {})
    )
    try:
        yield built
    finally:
        built.limits.close()
        await engine.dispose()
