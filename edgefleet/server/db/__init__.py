"""The store: SQLAlchemy 2 (async) on SQLite by default or PostgreSQL.

Tables live next to the resource that owns them (``server/devices/tables.py``
...); :mod:`edgefleet.server.db.registry` imports them all so Alembic sees one
metadata. Migrations run on every start (see :mod:`migrate`).
"""
