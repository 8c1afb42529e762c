"""registries: per-project registry credentials (passwords encrypted at rest)

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import edgefleet.server.db.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = edgefleet.server.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "registry_credentials",
        sa.Column("pk", Pk, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("project_pk", Pk, nullable=False),
        sa.Column("registry", sa.String(length=255), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_pk"],
            ["projects.pk"],
            name=op.f("fk_registry_credentials_project_pk_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_registry_credentials")),
        sa.UniqueConstraint(
            "project_pk", "registry", name=op.f("uq_registry_credentials_project_pk")
        ),
    )
    with op.batch_alter_table("registry_credentials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_registry_credentials_id"), ["id"], unique=True
        )
        batch_op.create_index(
            batch_op.f("ix_registry_credentials_project_pk"), ["project_pk"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("registry_credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_credentials_project_pk"))
        batch_op.drop_index(batch_op.f("ix_registry_credentials_id"))
    op.drop_table("registry_credentials")
