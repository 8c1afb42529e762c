"""institutional sign-in (OpenID Connect)

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import edgefleet.server.db.base

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = edgefleet.server.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    """Users gain an external identity (issuer + subject, unique); sign-ins under way."""
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_issuer", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("external_subject", sa.String(length=255), nullable=True))
        batch_op.create_index(
            "ux_users_external", ["external_issuer", "external_subject"], unique=True
        )
    op.create_table(
        "oidc_flows",
        sa.Column("pk", PK, autoincrement=True, nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("verifier", sa.String(length=2048), nullable=False),
        sa.Column("next_url", sa.String(length=2048), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("cli_port", sa.Integer(), nullable=True),
        sa.Column("cli_state", sa.String(length=128), nullable=True),
        sa.Column("cli_challenge", sa.String(length=64), nullable=True),
        sa.Column("grant_hash", sa.String(length=64), nullable=True),
        sa.Column("user_pk", PK, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_pk"], ["users.pk"], name=op.f("fk_oidc_flows_user_pk_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_oidc_flows")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_oidc_flows_state_hash")),
        sa.UniqueConstraint("grant_hash", name=op.f("uq_oidc_flows_grant_hash")),
    )


def downgrade() -> None:
    """Undo of :func:`upgrade`."""
    op.drop_table("oidc_flows")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ux_users_external")
        batch_op.drop_column("external_subject")
        batch_op.drop_column("external_issuer")
