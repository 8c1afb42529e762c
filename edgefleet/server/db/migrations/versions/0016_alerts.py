"""alert rules, webhooks and alerts

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in by the alerts work (issue 18); an empty step keeps the chain linear meanwhile."""


def downgrade() -> None:
    """Undo of :func:`upgrade`."""
