"""Engines and sessions. The user gives ``postgresql://`` or nothing; drivers
are chosen here, once (psycopg 3 for PostgreSQL, aiosqlite for SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from edgefleet.server.db import liveness


class DatabaseUrlError(ValueError):
    pass


def async_url(database_url: str | None, data_dir: Path) -> str:
    if not database_url:
        return f"sqlite+aiosqlite:///{data_dir / 'edgefleet.db'}"
    try:
        url = make_url(database_url)
    except (ArgumentError, ValueError) as exc:  # no scheme; a port that is no number
        raise DatabaseUrlError(f"--database-url is not a valid URL: {exc}") from exc
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return str(url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    if backend == "sqlite":
        return str(url.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False))
    raise DatabaseUrlError(f"--database-url: unsupported database {backend!r} (use postgresql://)")


def sync_url(async_database_url: str) -> str:
    url = make_url(async_database_url)
    if url.get_backend_name() == "sqlite":
        url = url.set(drivername="sqlite")
    return str(url.render_as_string(hide_password=False))


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        # SQLite has one writer, and a connection waiting for it (busy_timeout)
        # keeps its pool slot: with 15 slots, a storm of writers left none for
        # reads (an agent's credential lookup timed out at 10,000 devices).
        # Reads in WAL mode never wait for the writer, so give them room.
        # Statements make one trip to aiosqlite's thread each (:mod:`.sqlite_driver`),
        # imported here: a server on PostgreSQL never loads SQLite's driver and
        # dialect (~1 MB resident, issue 16).
        from edgefleet.server.db import sqlite_driver

        engine = create_async_engine(
            url, pool_size=5, max_overflow=35, module=sqlite_driver.dbapi()
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No pool_pre_ping: a closed connection is seen on its socket instead of
    # with a round trip per transaction (:mod:`.liveness`).
    engine = create_async_engine(url, pool_size=10, max_overflow=20)
    liveness.watch(engine)
    return engine


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
