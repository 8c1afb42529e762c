"""The SQL statements an engine sends while a block runs: for tests that pin how
many round trips a path makes (each waits a turn of a busy event loop)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


@contextmanager
def recorded(engine: Engine) -> Iterator[list[str]]:
    """Yield the list the statements ``engine`` executes inside the block are
    appended to (a sync engine: an async one's ``.sync_engine``)."""
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", seen)
