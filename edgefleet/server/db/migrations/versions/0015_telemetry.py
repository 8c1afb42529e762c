"""device telemetry and stored workload logs

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in by the telemetry work (issue 18); an empty step keeps the chain linear meanwhile."""


def downgrade() -> None:
    """Undo of :func:`upgrade`."""
