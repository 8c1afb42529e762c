"""project secrets, variables and configs

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import edgefleet.server.db.base

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = edgefleet.server.db.base.UTCDateTime(timezone=True)


def _keyed() -> list[sa.Column[Any]]:
    return [
        sa.Column("pk", Pk, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", When, nullable=False),
    ]


def _indexes(table: str, owner: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{table}_id"), ["id"], unique=True)
        batch_op.create_index(batch_op.f(f"ix_{table}_{owner}"), [owner], unique=False)


def upgrade() -> None:
    """Project secrets (values sealed with the server's key), project and
    selector-scoped variables, device variables (issue 19)."""
    op.create_table(
        "project_secrets",
        *_keyed(),
        sa.Column("project_pk", Pk, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("version", Pk, nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_pk"],
            ["projects.pk"],
            name=op.f("fk_project_secrets_project_pk_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_project_secrets")),
        sa.UniqueConstraint("project_pk", "name", name=op.f("uq_project_secrets_project_pk")),
    )
    _indexes("project_secrets", "project_pk")
    op.create_table(
        "project_variables",
        *_keyed(),
        sa.Column("project_pk", Pk, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("selector", sa.String(length=1024), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_pk"],
            ["projects.pk"],
            name=op.f("fk_project_variables_project_pk_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_project_variables")),
        sa.UniqueConstraint(
            "project_pk", "name", "selector", name=op.f("uq_project_variables_project_pk")
        ),
    )
    _indexes("project_variables", "project_pk")
    op.create_table(
        "device_variables",
        *_keyed(),
        sa.Column("device_pk", Pk, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["devices.pk"],
            name=op.f("fk_device_variables_device_pk_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_device_variables")),
        sa.UniqueConstraint("device_pk", "name", name=op.f("uq_device_variables_device_pk")),
    )
    _indexes("device_variables", "device_pk")


def downgrade() -> None:
    """Undo of :func:`upgrade`."""
    for table, owner in (
        ("device_variables", "device_pk"),
        ("project_variables", "project_pk"),
        ("project_secrets", "project_pk"),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_{owner}"))
            batch_op.drop_index(batch_op.f(f"ix_{table}_id"))
        op.drop_table(table)
