"""Apply Alembic migrations programmatically, so a new user never runs alembic.

The server applies them in a short-lived child process
(:func:`upgrade_in_child`, running this module): Alembic, Mako and Pygments
are ~10 MB that a server would otherwise keep resident for months after a
second of use at start (issue 16). Alembic is imported only inside the
functions below, never by merely importing this module.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from edgefleet.server.db.engine import sync_url

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")

HEAD = "0018"
"""The newest migration's revision (a unit test holds it to Alembic's own head).
A schema already there needs no child process: a restart saves its ~1 s of CPU
(Alembic's imports), which on a Raspberry Pi-class server is seconds of downtime."""


class MigrationFailed(RuntimeError):
    """The child applying the migrations exited with an error (its traceback is
    on the server's stderr, just above)."""


def alembic_config(async_database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sync_url(async_database_url).replace("%", "%%"))
    return config


def upgrade(async_database_url: str) -> None:
    """Bring the schema to head (blocking, in this process)."""
    from alembic import command

    command.upgrade(alembic_config(async_database_url), "head")


async def at_head(engine: AsyncEngine) -> bool:
    """Whether the schema is at :data:`HEAD` already. Anything else (no table
    yet, an older or unknown revision, a database that cannot be reached) is
    left to the child, which upgrades or says what is wrong."""
    try:
        async with engine.connect() as connection:
            found = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return list(found.scalars()) == [HEAD]
    except DBAPIError:
        return False


async def upgrade_in_child(async_database_url: str, log_level: str = "warning") -> None:
    """Bring the schema to head in ``python -m edgefleet.server.db.migrate``.
    The URL may hold a password: it goes through the child's stdin, never its
    command line. The child's log lines go to this process's stderr."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        "--log-level",
        log_level,
        stdin=asyncio.subprocess.PIPE,
    )
    await child.communicate(async_database_url.encode())
    if child.returncode != 0:
        raise MigrationFailed(f"applying the database migrations failed (exit {child.returncode})")


def revision(async_database_url: str, message: str) -> None:
    """Development helper: autogenerate a migration against a database at head."""
    from alembic import command

    command.revision(alembic_config(async_database_url), message=message, autogenerate=True)


def main() -> None:
    """The child of :func:`upgrade_in_child`: the URL on stdin."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    upgrade(sys.stdin.read().strip())


if __name__ == "__main__":
    main()
