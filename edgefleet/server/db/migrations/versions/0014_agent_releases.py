"""agent releases and over-the-air upgrades

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import edgefleet.server.db.base

revision: str = "0014"
down_revision: str | None = "0013"
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


def upgrade() -> None:
    """Agent releases (wheels) and the rollouts of one to a set of devices."""
    op.create_table(
        "agent_releases",
        *_keyed(),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("wheel", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_agent_releases")),
        sa.UniqueConstraint("version", name=op.f("uq_agent_releases_version")),
    )
    op.create_index(op.f("ix_agent_releases_id"), "agent_releases", ["id"], unique=True)
    op.create_table(
        "agent_upgrades",
        *_keyed(),
        sa.Column("project_pk", _PK, nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("max_parallel", sa.Integer(), nullable=False),
        sa.Column("deadline", sa.Float(), nullable=False),
        sa.Column("devices", _JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_pk"],
            ["projects.pk"],
            name=op.f("fk_agent_upgrades_project_pk_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_agent_upgrades")),
    )
    op.create_index(op.f("ix_agent_upgrades_id"), "agent_upgrades", ["id"], unique=True)
    op.create_index(
        op.f("ix_agent_upgrades_project_pk"), "agent_upgrades", ["project_pk"], unique=False
    )


def downgrade() -> None:
    """Undo of :func:`upgrade`."""
    op.drop_table("agent_upgrades")
    op.drop_table("agent_releases")
