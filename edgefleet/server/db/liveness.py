"""Whether a pooled PostgreSQL connection still has a server behind it,
judged without a round trip.

SQLAlchemy's ``pool_pre_ping`` answers that with a ``SELECT 1`` at every
checkout: one more round trip per transaction, and on a busy event loop one
more turn of it, which every API request and every status, presence and event
writer waited out (a ``GET /jobs/{id}`` made eight round trips while a fan-out
landed on 10,000 devices; issue 16). A server that ends a connection (a
restart, a failover, ``pg_terminate_backend``) says so on its socket: an
error message and then end-of-file, so the socket of an idle connection turns
readable. An idle connection has nothing else to read (the server does not
talk unasked; nothing here LISTENs on pooled connections), so a readable one
is treated as gone and the pool opens another in its place, and the request
that asked for it never sees the old one. What this cannot see, a peer that
vanished without a word (a cut cable), a ping could not either until TCP
gave up.
"""

from __future__ import annotations

import logging
import select
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)


def closed_by_server(dbapi_connection: Any) -> bool:
    """True if this idle psycopg connection has been closed (or has something
    unasked to read, which an idle connection never should)."""
    import psycopg  # loaded already: only psycopg's connections come here

    raw = dbapi_connection.driver_connection
    if raw.closed or raw.broken:
        return True
    try:
        fd = raw.pgconn.socket
    except psycopg.OperationalError:  # "the connection is lost"
        return True
    # poll, not select: a server holding 10,000 agent sockets opens its pool's
    # connections on descriptors past select's limit of 1,024
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def _checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    if closed_by_server(dbapi_connection):
        log.warning("replacing a pooled database connection the server closed")
        # the pool discards it and connects this slot again, then hands that out
        raise DisconnectionError("the database server closed this connection")


def watch(engine: AsyncEngine) -> None:
    """Replace closed connections as the pool hands them out."""
    event.listen(engine.sync_engine.pool, "checkout", _checkout)
