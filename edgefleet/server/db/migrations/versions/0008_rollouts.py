"""staged rollouts, last known good, update locks

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import edgefleet.server.db.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    """A job's rollout settings and progress (``job_rollouts``); why a device's change waits."""
    op.create_table(
        "job_rollouts",
        sa.Column("job_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("settings", _JSON, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column(
            "from_version_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("from_version", sa.String(length=64), nullable=True),
        sa.Column("to_version", sa.String(length=64), nullable=True),
        sa.Column("from_resolved", _JSON, nullable=False),
        sa.Column("progress", _JSON, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "locks_overridden_at",
            edgefleet.server.db.base.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column(
            "updated_at", edgefleet.server.db.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["job_pk"], ["jobs.pk"], name=op.f("fk_job_rollouts_job_pk_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["from_version_pk"],
            ["app_versions.pk"],
            name=op.f("fk_job_rollouts_from_version_pk_app_versions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("job_pk", name=op.f("pk_job_rollouts")),
    )
    op.create_index(op.f("ix_job_rollouts_state"), "job_rollouts", ["state"], unique=False)
    op.add_column("job_devices", sa.Column("waiting", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_devices") as batch:
        batch.drop_column("waiting")
    op.drop_index(op.f("ix_job_rollouts_state"), table_name="job_rollouts")
    op.drop_table("job_rollouts")
