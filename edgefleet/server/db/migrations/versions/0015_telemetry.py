"""device telemetry and stored workload logs

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import edgefleet.server.db.base

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = edgefleet.server.db.base.UTCDateTime(timezone=True)


def _device_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["device_pk"],
        ["devices.pk"],
        name=op.f(f"fk_{table}_device_pk_devices"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    """Raw telemetry samples, their rollups, and workloads' recent logs (issue 18)."""
    op.create_table(
        "telemetry_samples",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("device_pk", _PK, nullable=False),
        sa.Column("time", _TIME, nullable=False),
        sa.Column("cpu", sa.Float(), nullable=False),
        sa.Column("memory", sa.Float(), nullable=False),
        sa.Column("disk", sa.Float(), nullable=False),
        sa.Column("memory_used", sa.BigInteger(), nullable=False),
        sa.Column("memory_total", sa.BigInteger(), nullable=False),
        sa.Column("disk_used", sa.BigInteger(), nullable=False),
        sa.Column("disk_total", sa.BigInteger(), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("net_rx", sa.BigInteger(), nullable=False),
        sa.Column("net_tx", sa.BigInteger(), nullable=False),
        sa.Column("uptime", sa.Float(), nullable=False),
        sa.Column("rolled", sa.Boolean(), nullable=False),
        _device_fk("telemetry_samples"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_telemetry_samples")),
        sa.UniqueConstraint("device_pk", "time", name=op.f("uq_telemetry_samples_device_pk")),
    )
    op.create_index(
        op.f("ix_telemetry_samples_rolled"), "telemetry_samples", ["rolled"], unique=False
    )
    op.create_index(op.f("ix_telemetry_samples_time"), "telemetry_samples", ["time"], unique=False)
    op.create_table(
        "telemetry_rollups",
        sa.Column("device_pk", _PK, nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("time", _TIME, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("cpu", sa.Float(), nullable=False),
        sa.Column("memory", sa.Float(), nullable=False),
        sa.Column("disk", sa.Float(), nullable=False),
        sa.Column("cpu_max", sa.Float(), nullable=False),
        sa.Column("memory_max", sa.Float(), nullable=False),
        sa.Column("disk_max", sa.Float(), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("temperature_count", sa.Integer(), nullable=False),
        sa.Column("memory_total", sa.BigInteger(), nullable=False),
        sa.Column("disk_total", sa.BigInteger(), nullable=False),
        sa.Column("net_rx", sa.BigInteger(), nullable=False),
        sa.Column("net_tx", sa.BigInteger(), nullable=False),
        sa.Column("uptime", sa.Float(), nullable=False),
        _device_fk("telemetry_rollups"),
        sa.PrimaryKeyConstraint("device_pk", "step", "time", name=op.f("pk_telemetry_rollups")),
    )
    op.create_index(op.f("ix_telemetry_rollups_time"), "telemetry_rollups", ["time"], unique=False)
    op.create_table(
        "workload_logs",
        sa.Column("device_pk", _PK, nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=128), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("lines", _JSON, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        _device_fk("workload_logs"),
        sa.PrimaryKeyConstraint("device_pk", "job_id", "service", name=op.f("pk_workload_logs")),
    )
    op.create_index(
        op.f("ix_workload_logs_updated_at"), "workload_logs", ["updated_at"], unique=False
    )


def downgrade() -> None:
    """Undo of :func:`upgrade`."""
    op.drop_table("workload_logs")
    op.drop_table("telemetry_rollups")
    op.drop_table("telemetry_samples")
