"""local actions reported by devices, owners' local apps

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in by the device-local work (issue 21); an empty step keeps the chain linear meanwhile."""


def downgrade() -> None:
    """Undo of :func:`upgrade`."""
