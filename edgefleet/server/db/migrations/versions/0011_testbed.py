"""device loans and reservations

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import edgefleet.server.db.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = edgefleet.server.db.base.UTCDateTime(timezone=True)


def _keyed() -> list[sa.Column[object]]:
    return [
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    ]


def _fk(column: str, target: str, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.pk"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE",
    )


def _indexes(table: str, *columns: str, unique_id: bool = True) -> None:
    if unique_id:
        op.create_index(op.f(f"ix_{table}_id"), table, ["id"], unique=True)
    for column in columns:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def upgrade() -> None:
    op.create_table(
        "device_loans",
        *_keyed(),
        sa.Column("device_pk", _PK, nullable=False),
        sa.Column("project_pk", _PK, nullable=True),
        sa.Column("guest", sa.String(length=32), nullable=False),
        sa.Column("rights", _JSON, nullable=False),
        sa.Column("expose_labels", _JSON, nullable=False),
        sa.Column("time_share", sa.Float(), nullable=False),
        sa.Column("share_window_hours", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        _fk("device_pk", "devices", "device_loans"),
        _fk("project_pk", "projects", "device_loans"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_device_loans")),
        sa.UniqueConstraint("device_pk", "guest", name=op.f("uq_device_loans_device_pk")),
    )
    _indexes("device_loans", "device_pk", "project_pk")
    op.create_table(
        "reservations",
        *_keyed(),
        sa.Column("project_pk", _PK, nullable=False),
        sa.Column("start", _TIME, nullable=False),
        sa.Column("end", _TIME, nullable=False),
        sa.Column("exclusive", sa.Boolean(), nullable=False),
        sa.Column("selector", sa.String(length=1024), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("spread", sa.String(length=128), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        _fk("project_pk", "projects", "reservations"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_reservations")),
    )
    _indexes("reservations", "project_pk", "start", "end")
    op.create_table(
        "reservation_devices",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("reservation_pk", _PK, nullable=False),
        sa.Column("device_pk", _PK, nullable=False),
        _fk("reservation_pk", "reservations", "reservation_devices"),
        _fk("device_pk", "devices", "reservation_devices"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_reservation_devices")),
        sa.UniqueConstraint(
            "reservation_pk", "device_pk", name=op.f("uq_reservation_devices_reservation_pk")
        ),
    )
    _indexes("reservation_devices", "reservation_pk", "device_pk", unique_id=False)
    op.create_table(
        "reservation_jobs",
        sa.Column("job_pk", _PK, nullable=False),
        sa.Column("reservation_pk", _PK, nullable=False),
        _fk("job_pk", "jobs", "reservation_jobs"),
        _fk("reservation_pk", "reservations", "reservation_jobs"),
        sa.PrimaryKeyConstraint("job_pk", name=op.f("pk_reservation_jobs")),
    )
    _indexes("reservation_jobs", "reservation_pk", unique_id=False)
    op.create_table(
        "device_requirements",
        *_keyed(),
        sa.Column("project_pk", _PK, nullable=False),
        sa.Column("selector", sa.String(length=1024), nullable=False),
        sa.Column("peripherals", _JSON, nullable=False),
        _fk("project_pk", "projects", "device_requirements"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_device_requirements")),
    )
    _indexes("device_requirements", "project_pk")


def downgrade() -> None:
    for table in (
        "device_requirements",
        "reservation_jobs",
        "reservation_devices",
        "reservations",
        "device_loans",
    ):
        op.drop_table(table)
