"""Databases already at the schema's head, for the servers the tests start.

A server on an empty database applies the migrations in a child process first:
~1.7 s of CPU (Alembic's imports and every migration) per start, and the suite
starts well over a hundred servers on fresh databases on a 2-core CI machine.
A test that is not about migrating starts on a copy of one database migrated
once per test process, by the same child the server runs
(``python -m edgefleet.server.db.migrate``), so the copy is exactly what a
first start would have made.

Migrating itself stays tested: ``tests/unit/server/db`` upgrades empty and old
databases, ``edgefleet up`` (``tests/e2e/test_up.py``) starts its server on an
empty one, and the replica test starts several servers on one empty PostgreSQL
database. A new test about a first start passes ``migrated=False`` to
``ServerProc``.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from edgefleet.server.db.engine import async_url
from tests.support import postgres

_sqlite: Path | None = None
_postgres: dict[str, str] = {}  # admin URL -> template database name


def _migrate(database_url: str | None, data_dir: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "edgefleet.server.db.migrate"],
        input=async_url(database_url, data_dir),
        text=True,
        capture_output=True,
        check=True,
    )


def sqlite_copy(destination: Path) -> None:
    """Put a migrated SQLite database at ``destination`` (a server's ``edgefleet.db``)."""
    global _sqlite
    if _sqlite is None:
        directory = Path(tempfile.mkdtemp(prefix="ef-template-"))
        atexit.register(shutil.rmtree, directory, True)
        _migrate(None, directory)
        _sqlite = directory / "edgefleet.db"
        assert not _sqlite.with_name("edgefleet.db-wal").exists(), "the template was not closed"
    shutil.copyfile(_sqlite, destination)


def _postgres_template(admin_url: str) -> str:
    if admin_url not in _postgres:
        url, name = postgres.fresh_database(admin_url)
        _migrate(url, Path(tempfile.gettempdir()))
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as conn:
            # No connections (autovacuum's included): CREATE DATABASE ... TEMPLATE
            # refuses a source anyone is connected to.
            conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
        _postgres[admin_url] = name
        atexit.register(_drop_template, admin_url, name)
    return _postgres[admin_url]


def _drop_template(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
    postgres.drop_database(admin_url, name)


def postgres_database(admin_url: str) -> tuple[str, str]:
    """A new database at the schema's head; returns (url, name) as
    :func:`tests.support.postgres.fresh_database` does."""
    return postgres.fresh_database(admin_url, template=_postgres_template(admin_url))
