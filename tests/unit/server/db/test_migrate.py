"""Migrations applied in a child process, so the server never loads Alembic."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from edgefleet.server.db.engine import create_engine
from edgefleet.server.db.migrate import (
    HEAD,
    MigrationFailed,
    alembic_config,
    at_head,
    upgrade_in_child,
)


def test_the_child_brings_a_new_database_to_head(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    asyncio.run(upgrade_in_child(url))
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    with sqlite3.connect(tmp_path / "fresh.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]
        assert db.execute("SELECT count(*) FROM devices").fetchone() == (0,)
    asyncio.run(upgrade_in_child(url))  # at head already: nothing to do, no error


def test_a_failing_child_is_an_error_here(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'x.db'}"  # cannot be created
    with pytest.raises(MigrationFailed, match="exit 1"):
        asyncio.run(upgrade_in_child(url))


def test_importing_the_module_loads_no_alembic() -> None:
    probe = "import sys, edgefleet.server.db.migrate; print('alembic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_head_is_alembics_head(tmp_path: Path) -> None:
    """HEAD lets a restart skip the child; a new migration must move it too."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    assert ScriptDirectory.from_config(alembic_config(url)).get_current_head() == HEAD


def test_at_head_only_for_a_schema_at_head(tmp_path: Path) -> None:
    def check(path: Path) -> bool:
        async def ask() -> bool:
            engine = create_engine(f"sqlite+aiosqlite:///{path}")
            try:
                return await at_head(engine)
            finally:
                await engine.dispose()

        return asyncio.run(ask())

    path = tmp_path / "db.db"
    assert check(path) is False  # no schema at all: the child creates it
    asyncio.run(upgrade_in_child(f"sqlite+aiosqlite:///{path}"))
    assert check(path) is True
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = '0017'")
    assert check(path) is False  # older: the child upgrades it
