"""personal instances, build contexts, project volumes

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import edgefleet.server.db.base

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = edgefleet.server.db.base.UTCDateTime(timezone=True)


def _fk(table: str, column: str, referred: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{referred}.pk"],
        name=op.f(f"fk_{table}_{column}_{referred}"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    """Launchable applications, personal instances and their shares, project volumes
    (issue 21)."""
    op.create_table(
        "launchable_apps",
        sa.Column("pk", Pk, autoincrement=True, nullable=False),
        sa.Column("application_pk", Pk, nullable=False),
        sa.Column("idle_timeout", Pk, nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", When, nullable=False),
        _fk("launchable_apps", "application_pk", "applications"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_launchable_apps")),
        sa.UniqueConstraint("application_pk", name=op.f("uq_launchable_apps_application_pk")),
    )
    op.create_table(
        "instances",
        sa.Column("pk", Pk, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("job_pk", Pk, nullable=False),
        sa.Column("project_pk", Pk, nullable=False),
        sa.Column("owner_pk", Pk, nullable=False),
        sa.Column("idle_timeout", Pk, nullable=False),
        sa.Column("last_access", When, nullable=False),
        sa.Column("stopped_reason", sa.Text(), nullable=True),
        _fk("instances", "job_pk", "jobs"),
        _fk("instances", "project_pk", "projects"),
        _fk("instances", "owner_pk", "users"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_instances")),
        sa.UniqueConstraint("job_pk", name=op.f("uq_instances_job_pk")),
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_instances_id"), ["id"], unique=True)
        batch_op.create_index(batch_op.f("ix_instances_project_pk"), ["project_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_instances_owner_pk"), ["owner_pk"], unique=False)
    op.create_table(
        "instance_shares",
        sa.Column("pk", Pk, autoincrement=True, nullable=False),
        sa.Column("instance_pk", Pk, nullable=False),
        sa.Column("user_pk", Pk, nullable=False),
        sa.Column("created_at", When, nullable=False),
        _fk("instance_shares", "instance_pk", "instances"),
        _fk("instance_shares", "user_pk", "users"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_instance_shares")),
        sa.UniqueConstraint("instance_pk", "user_pk", name=op.f("uq_instance_shares_instance_pk")),
    )
    with op.batch_alter_table("instance_shares", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_instance_shares_instance_pk"), ["instance_pk"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_instance_shares_user_pk"), ["user_pk"], unique=False)

    op.create_table(
        "project_volumes",
        sa.Column("pk", Pk, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("project_pk", Pk, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        _fk("project_volumes", "project_pk", "projects"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_project_volumes")),
        sa.UniqueConstraint("project_pk", "name", name=op.f("uq_project_volumes_project_pk")),
    )
    with op.batch_alter_table("project_volumes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_project_volumes_id"), ["id"], unique=True)
        batch_op.create_index(
            batch_op.f("ix_project_volumes_project_pk"), ["project_pk"], unique=False
        )


def downgrade() -> None:
    """Undo of :func:`upgrade`."""
    op.drop_table("project_volumes")
    op.drop_table("instance_shares")
    op.drop_table("instances")
    op.drop_table("launchable_apps")
