"""personal instances, build contexts, project volumes

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in by the instances and volumes work (issue 21); an empty step keeps the chain linear meanwhile."""


def downgrade() -> None:
    """Undo of :func:`upgrade`."""
