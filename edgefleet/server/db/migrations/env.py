"""Alembic environment: run by :func:`edgefleet.server.db.migrate.upgrade` on
every server start (and by ``alembic`` during development)."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, Engine, create_engine, event, pool, text

from edgefleet.server.db.registry import metadata

# Replicas may start together against one PostgreSQL: the first takes this
# lock and migrates, the others wait for it and then find nothing to do.
MIGRATION_LOCK = 740_031_001

config = context.config


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    if engine.dialect.name == "sqlite":
        _transactional_ddl(engine)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _transactional_ddl(engine: Engine) -> None:
    """All of an upgrade in one SQLite transaction. Python's sqlite3 opens
    transactions before INSERT/UPDATE/DELETE only, so each CREATE or ALTER ran
    on its own and committed (and synced) alone: ~160 syncs for a new
    database (seconds of every first start), and a crash in between left a
    half-migrated schema. The driver's own handling is turned off and BEGIN
    is sent when SQLAlchemy begins (SQLAlchemy's recipe for pysqlite)."""

    @event.listens_for(engine, "connect")
    def _driver_leaves_transactions_alone(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    is_pg = connection.dialect.name == "postgresql"
    if is_pg:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if is_pg:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            connection.commit()


run_migrations_online()
