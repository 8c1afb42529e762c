"""--database-url: what make_url refuses is one DatabaseUrlError naming the flag."""

from __future__ import annotations

import asyncio
import os
import resource
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import QueuePool, text

from edgefleet.server.db.engine import DatabaseUrlError, async_url, create_engine
from tests.support import postgres


@pytest.mark.parametrize(
    "url",
    ["nonsense", "://x", "post gres://h/db", "postgresql://u:p@h:notaport/db"],
)
def test_a_url_make_url_refuses_is_a_database_url_error(url: str) -> None:
    with pytest.raises(DatabaseUrlError, match="--database-url is not a valid URL"):
        async_url(url, Path("."))


def test_urls_get_their_async_driver() -> None:
    assert async_url(None, Path("/d")) == "sqlite+aiosqlite:////d/edgefleet.db"
    assert async_url("postgres://u:p@h:5433/db", Path(".")).startswith(
        "postgresql+psycopg://u:p@h:5433/db"
    )


@pytest.mark.parametrize("crowded", [False, True], ids=["few-files", "past-1024-files"])
async def test_a_pooled_connection_postgresql_closed_is_replaced_at_checkout(
    tmp_path: Path, crowded: bool
) -> None:
    """A PostgreSQL restart (here: its backends terminated) costs no request:
    the pool sees the closed socket when it hands the connection out and opens
    another, without a ping's round trip on every checkout. ``crowded``: the
    connection's descriptor is past 1,024, as in a server holding thousands
    of agents (select() refused those, and every agent handshake failed)."""
    admin = postgres.ensure_server()
    url, name = postgres.fresh_database(admin)
    engine = create_engine(async_url(url, tmp_path))
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)
    if crowded and limit[0] < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit[1], 2048), limit[1]))
    held = [open(os.devnull) for _ in range(1100)] if crowded else []  # noqa: SIM115
    try:
        async with engine.connect() as connection:
            first = await connection.scalar(text("SELECT pg_backend_pid()"))
            raw = await connection.get_raw_connection()
            assert (raw.driver_connection.pgconn.socket > 1024) is crowded  # type: ignore[union-attr]
        pool = engine.sync_engine.pool
        assert isinstance(pool, QueuePool) and pool.checkedin() == 1  # to be handed out again
        with psycopg.connect(admin, autocommit=True) as superuser:
            ended = superuser.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            ).fetchall()
        assert ended == [(True,)]
        await _until_gone(admin, name)
        async with engine.connect() as connection:
            second = await connection.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
    finally:
        for file in held:
            file.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, limit)
        await engine.dispose()
        postgres.drop_database(admin, name)


async def _until_gone(admin: str, name: str) -> None:
    """Until the terminated backends have exited (and so closed their sockets)."""
    for _ in range(100):  # bounded: 5 s
        with psycopg.connect(admin, autocommit=True) as superuser:
            left = superuser.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchone()
        if left == (0,):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the terminated backend never exited")
