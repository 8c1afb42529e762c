"""Apply Alembic migrations programmatically, so a new user never runs alembic."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from edgefleet.server.db.engine import sync_url

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(async_database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sync_url(async_database_url).replace("%", "%%"))
    return config


def upgrade(async_database_url: str) -> None:
    """Bring the schema to head (blocking; call it in a thread)."""
    command.upgrade(alembic_config(async_database_url), "head")


def revision(async_database_url: str, message: str) -> None:
    """Development helper: autogenerate a migration against a database at head."""
    command.revision(alembic_config(async_database_url), message=message, autogenerate=True)
