"""SQLite through aiosqlite with one trip to its thread per statement.

aiosqlite runs every call on a thread of its own and hands the result back to
the event loop, so each call waits for the loop's next turn. SQLAlchemy's
adapter makes four such calls for every SELECT (open a cursor, execute, fetch
all, close the cursor). At 10,000 devices, while a fan-out's agent frames keep
the loop's ready queue long, a turn costs tens of milliseconds, and a
``GET /jobs/{id}`` of a dozen statements spent most of its second waiting for
turns, not running (issue 16, RESULTS.md 2026-12-02). Here a statement is one
function run on aiosqlite's thread (cursor, execute, fetch, close), so one
trip; everything else (errors, transactions, the pool, server-side cursors
for ``stream()``) is SQLAlchemy's aiosqlite dialect unchanged.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

Outcome = tuple[Any, list[Any] | None, int, int | None]
"""What one statement leaves: description, rows (None if it has none), rowcount,
lastrowid."""


def _execute(conn: sqlite3.Connection, sql: str, parameters: Any) -> Outcome:
    """Runs on aiosqlite's thread: the whole statement, rows included."""
    cursor = conn.cursor()
    try:
        cursor.execute(sql, () if parameters is None else parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        # rowcount after the fetch: for INSERT ... RETURNING, SQLite counts
        # the rows only once they have been stepped through.
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def _execute_many(conn: sqlite3.Connection, sql: str, rows: Sequence[Any]) -> Outcome:
    cursor = conn.cursor()
    try:
        cursor.executemany(sql, rows)
        return None, None, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


async def _on_thread(connection: Any, fn: Callable[..., Outcome], *args: Any) -> Outcome:
    """``fn(sqlite3_connection, *args)`` on aiosqlite's thread, through its own
    queue (the one every aiosqlite call goes through, so calls stay in order)."""
    run = cast(Callable[..., Awaitable[Outcome]], connection._execute)
    return await run(fn, connection._conn, *args)


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A DBAPI cursor whose statements each make one trip to the thread; it holds
    the outcome of the last one (no sqlite3 cursor lives between statements)."""

    __slots__ = ("_arraysize", "_outcome")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        super().__init__(adapt_connection)
        self._outcome: Outcome = (None, None, -1, None)
        self._arraysize = 1

    def _make_new_cursor(self, connection: Any) -> Any:
        return None  # made on the thread, per statement

    def _aenter_cursor(self, cursor: Any) -> Any:
        return None

    @property
    def description(self) -> Any:
        return self._outcome[0]

    @property
    def rowcount(self) -> int:
        return self._outcome[2]

    @property
    def lastrowid(self) -> Any:
        return self._outcome[3]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        async with self._adapt_connection._execute_mutex:
            self._outcome = await _on_thread(self._connection, _execute, operation, parameters)
            self._rows = collections.deque(self._outcome[1] or ())
            return self

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        async with self._adapt_connection._execute_mutex:
            rows = list(seq_of_parameters)
            self._outcome = await _on_thread(self._connection, _execute_many, operation, rows)
            self._rows = collections.deque()
            return self

    async def _async_soft_close(self) -> None:
        return None  # nothing is open between statements

    def close(self) -> None:
        self._rows.clear()

    def nextset(self) -> None:
        raise sqlite3.NotSupportedError("SQLite has one result set per statement")

    def setinputsizes(self, *inputsizes: Any) -> None:
        return None


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor  # type: ignore[assignment]  # (a subclass of its cursor)


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """What ``create_async_engine(..., module=...)`` takes as the DBAPI module."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
