"""``column IN (values)`` whose SQL text does not change with the values' count.

SQLAlchemy renders ``in_(list)`` as one placeholder per value at execution
time, so every group size is a different statement on the wire. On
PostgreSQL that text is what psycopg keys its work on: each new length is
parsed into ``$n`` placeholders again (not cached past 4 KB of SQL, i.e. a
group of a few hundred), prepared after five uses, and pushed out of the
100-statement cache by other lengths (a DEALLOCATE round trip each) -- and
SQLAlchemy coerces each value into a literal bind on the way. At an
enrollment or reconnect storm the groups' lengths vary all the time
(issue 16). ``= ANY(:array)`` is one statement, one parameter, whatever the
count. SQLite has no arrays and no server-side statements: there it stays
``IN``, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.ext.asyncio import AsyncSession


def among(db: AsyncSession, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column`` is one of ``values`` (none: false), in one array parameter on
    PostgreSQL (see the module's docstring)."""
    listed = list(values)
    if db.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        array = bindparam(None, listed, type_=ARRAY(column.type))
        result: ColumnElement[bool] = column == any_(array)
        return result
    return column.in_(listed)  # type: ignore[no-any-return]
