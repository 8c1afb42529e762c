"""The migrations build exactly the schema the table classes describe.

Several workstreams each own one migration step; a column declared in a
``tables.py`` but not in its step (or with another type or nullability) would
only show up on a real database, so compare them here on SQLite.
"""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from edgefleet.server.db.migrate import alembic_config, upgrade
from edgefleet.server.db.registry import metadata


def test_one_linear_chain_of_migrations() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite:///unused.db"))
    assert len(script.get_heads()) == 1, script.get_heads()


def test_migrated_schema_matches_the_table_classes(tmp_path: Path) -> None:
    path = tmp_path / "schema.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    with create_engine(f"sqlite:///{path}").connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []
