"""INSERT ... ON CONFLICT for both engines (their dialects spell it alike)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


def insert_for(db: AsyncSession, table: Any) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_do_update``) for this session.
    Each dialect is imported by the server that uses it (PostgreSQL's: ~2.3 MB
    an SQLite server would carry otherwise, issue 16)."""
    if db.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)
