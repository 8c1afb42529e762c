"""agent releases and over-the-air upgrades

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in by the agent upgrades work (issue 18); an empty step keeps the chain linear meanwhile."""


def downgrade() -> None:
    """Undo of :func:`upgrade`."""
