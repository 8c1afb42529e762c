"""federated: datasets devices report, and computations (their audit)

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import edgefleet.server.db.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = edgefleet.server.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "fed_datasets",
        sa.Column("pk", PK, autoincrement=True, nullable=False),
        sa.Column("device_pk", PK, nullable=False),
        sa.Column("project_pk", PK, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("columns", JSON, nullable=False),
        sa.Column("rows_approx", PK, nullable=False),
        sa.Column("bytes_approx", PK, nullable=False),
        sa.Column("allow_projects", JSON, nullable=False),
        sa.Column("allow_ops", JSON, nullable=False),
        sa.Column("min_parties", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["devices.pk"],
            name=op.f("fk_fed_datasets_device_pk_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_fed_datasets")),
        sa.UniqueConstraint("device_pk", "name", name=op.f("uq_fed_datasets_device_pk")),
    )
    with op.batch_alter_table("fed_datasets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fed_datasets_device_pk"), ["device_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_fed_datasets_name"), ["name"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_fed_datasets_project_pk"), ["project_pk"], unique=False
        )

    op.create_table(
        "computations",
        sa.Column("pk", PK, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("project_pk", PK, nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("dataset", sa.String(length=128), nullable=False),
        sa.Column("op", sa.String(length=16), nullable=False),
        sa.Column("column", sa.String(length=256), nullable=False),
        sa.Column("bins", JSON, nullable=True),
        sa.Column("target_devices", JSON, nullable=True),
        sa.Column("selector", sa.String(length=1024), nullable=True),
        sa.Column("invited", JSON, nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("round_timeout", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("result", JSON, nullable=True),
        sa.Column("participants", JSON, nullable=False),
        sa.Column("parties", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("replica", sa.String(length=128), nullable=False),
        sa.Column("expires_at", TIME, nullable=True),
        sa.Column("finished_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_computations")),
    )
    with op.batch_alter_table("computations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_computations_id"), ["id"], unique=True)
        batch_op.create_index(
            batch_op.f("ix_computations_project_pk"), ["project_pk"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_computations_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("computations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_computations_state"))
        batch_op.drop_index(batch_op.f("ix_computations_project_pk"))
        batch_op.drop_index(batch_op.f("ix_computations_id"))
    op.drop_table("computations")

    with op.batch_alter_table("fed_datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fed_datasets_project_pk"))
        batch_op.drop_index(batch_op.f("ix_fed_datasets_name"))
        batch_op.drop_index(batch_op.f("ix_fed_datasets_device_pk"))
    op.drop_table("fed_datasets")
