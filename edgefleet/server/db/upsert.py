"""INSERT ... ON CONFLICT for both engines (their dialects spell it alike)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_for(db: AsyncSession, table: Any) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_do_update``) for this session."""
    dialect = db.get_bind().dialect.name
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
