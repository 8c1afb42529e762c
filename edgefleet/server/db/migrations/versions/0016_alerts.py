"""alert rules, webhooks and alerts

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import edgefleet.server.db.base

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = edgefleet.server.db.base.UTCDateTime(timezone=True)


def _keyed(table: str) -> list[sa.Column[object]]:
    return [
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    ]


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.pk"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE",
    )


def _ids(table: str) -> None:
    op.create_index(op.f(f"ix_{table}_id"), table, ["id"], unique=True)
    op.create_index(op.f(f"ix_{table}_project_pk"), table, ["project_pk"], unique=False)


def upgrade() -> None:
    """Alert rules, webhooks, alert instances and owed webhook messages (issue 18)."""
    op.create_table(
        "alert_rules",
        *_keyed("alert_rules"),
        sa.Column("project_pk", _PK, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("for_seconds", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        _fk("alert_rules", "project_pk", "projects"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_alert_rules")),
        sa.UniqueConstraint("project_pk", "name", name=op.f("uq_alert_rules_project_pk")),
    )
    _ids("alert_rules")
    op.create_table(
        "alert_webhooks",
        *_keyed("alert_webhooks"),
        sa.Column("project_pk", _PK, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        _fk("alert_webhooks", "project_pk", "projects"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_alert_webhooks")),
        sa.UniqueConstraint("project_pk", "name", name=op.f("uq_alert_webhooks_project_pk")),
    )
    _ids("alert_webhooks")
    op.create_table(
        "alerts",
        *_keyed("alerts"),
        sa.Column("project_pk", _PK, nullable=False),
        sa.Column("rule_pk", _PK, nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("labels", _JSON, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("resolved_at", _TIME, nullable=True),
        _fk("alerts", "project_pk", "projects"),
        _fk("alerts", "rule_pk", "alert_rules"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_alerts")),
    )
    _ids("alerts")
    op.create_index(op.f("ix_alerts_rule_pk"), "alerts", ["rule_pk"], unique=False)
    op.create_index(op.f("ix_alerts_state"), "alerts", ["state"], unique=False)
    op.create_table(
        "alert_deliveries",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_pk", _PK, nullable=False),
        sa.Column("webhook_pk", _PK, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", _TIME, nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _fk("alert_deliveries", "alert_pk", "alerts"),
        _fk("alert_deliveries", "webhook_pk", "alert_webhooks"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_alert_deliveries")),
        sa.UniqueConstraint(
            "alert_pk", "webhook_pk", "status", name=op.f("uq_alert_deliveries_alert_pk")
        ),
    )
    for column in ("alert_pk", "webhook_pk", "next_at", "done"):
        op.create_index(
            op.f(f"ix_alert_deliveries_{column}"), "alert_deliveries", [column], unique=False
        )


def downgrade() -> None:
    """Undo of :func:`upgrade`."""
    for table in ("alert_deliveries", "alerts", "alert_webhooks", "alert_rules"):
        op.drop_table(table)
