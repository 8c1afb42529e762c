"""federated analytics: privacy budgets and computation details

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    """Each dataset's privacy policy as its device reports it (with the epsilon spent),
    and each computation's query beyond one column (columns, where, groups, epsilon)."""
    with op.batch_alter_table("fed_datasets") as table:
        table.add_column(sa.Column("privacy", JSON, nullable=True))
    with op.batch_alter_table("computations") as table:
        table.add_column(sa.Column("query", JSON, nullable=True))


def downgrade() -> None:
    """Undo of :func:`upgrade`."""
    with op.batch_alter_table("computations") as table:
        table.drop_column("query")
    with op.batch_alter_table("fed_datasets") as table:
        table.drop_column("privacy")
