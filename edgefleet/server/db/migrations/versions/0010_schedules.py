"""periodic jobs and their runs

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import edgefleet.server.db.base

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """A job's schedule beside the job, and the runs devices report."""
    op.create_table(
        "job_schedules",
        sa.Column("job_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("cron", sa.String(length=128), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("overlap", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_pk"], ["jobs.pk"], name=op.f("fk_job_schedules_job_pk_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_pk", name=op.f("pk_job_schedules")),
    )
    op.create_table(
        "job_runs",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "device_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("scheduled", edgefleet.server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started", edgefleet.server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished", edgefleet.server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "services",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "received_at", edgefleet.server.db.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["job_pk"], ["jobs.pk"], name=op.f("fk_job_runs_job_pk_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["devices.pk"],
            name=op.f("fk_job_runs_device_pk_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_job_runs")),
        sa.UniqueConstraint("device_pk", "run_id", name=op.f("uq_job_runs_device_pk")),
    )
    op.create_index("ix_job_runs_job_device", "job_runs", ["job_pk", "device_pk"], unique=False)


def downgrade() -> None:
    """Undo of :func:`upgrade`."""
    op.drop_index("ix_job_runs_job_device", table_name="job_runs")
    op.drop_table("job_runs")
    op.drop_table("job_schedules")
