"""The migrations build exactly the schema the table classes describe.

Several workstreams each own one migration step; a column declared in a
``tables.py`` but not in its step (or with another type or nullability) would
only show up on a real database, so compare them here on SQLite.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
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


def test_a_failed_upgrade_leaves_sqlite_as_it_was(tmp_path: Path) -> None:
    """One transaction per upgrade: 0018 creates ``launchable_apps`` first and
    then ``instances``; with an ``instances`` table in the way it fails, and its
    first table must not be left behind, nor the version moved."""
    path = tmp_path / "half.db"
    url = f"sqlite+aiosqlite:///{path}"
    command.upgrade(alembic_config(url), "0017")
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE instances (x INTEGER)")
    with pytest.raises(Exception, match="instances"):
        upgrade(url)
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        version = db.execute("SELECT version_num FROM alembic_version").fetchall()
    assert "launchable_apps" not in tables
    assert version == [("0017",)]
