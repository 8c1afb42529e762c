"""data: collected records, per-stream counters and device backlog, files

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import edgefleet.server.db.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = edgefleet.server.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "data_records",
        sa.Column("pk", Pk, autoincrement=True, nullable=False),
        sa.Column("job_pk", Pk, nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("time", When, nullable=False),
        sa.Column("received_at", When, nullable=False),
        sa.Column("record_id", sa.String(length=128), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_pk"], ["jobs.pk"], name=op.f("fk_data_records_job_pk_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_data_records")),
        sa.UniqueConstraint(
            "job_pk", "device_id", "stream", "seq", name="uq_data_records_seq"
        ),
        sa.UniqueConstraint(
            "job_pk", "device_id", "stream", "record_id", name="uq_data_records_record_id"
        ),
    )
    op.create_index("ix_data_records_job_pk_pk", "data_records", ["job_pk", "pk"])
    op.create_index("ix_data_records_job_pk_time", "data_records", ["job_pk", "time"])

    op.create_table(
        "data_streams",
        sa.Column("job_pk", Pk, nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("first_time", When, nullable=True),
        sa.Column("last_time", When, nullable=True),
        sa.Column("pending", sa.BigInteger(), nullable=False),
        sa.Column("pending_bytes", sa.BigInteger(), nullable=False),
        sa.Column("oldest_pending", When, nullable=True),
        sa.Column("accepted", sa.BigInteger(), nullable=False),
        sa.Column("evicted", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.Column("reported_at", When, nullable=True),
        sa.ForeignKeyConstraint(
            ["job_pk"], ["jobs.pk"], name=op.f("fk_data_streams_job_pk_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_pk", "device_id", "stream", name=op.f("pk_data_streams")),
    )

    op.create_table(
        "data_files",
        sa.Column("job_pk", Pk, nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("time", When, nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("pk", Pk, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_pk"], ["jobs.pk"], name=op.f("fk_data_files_job_pk_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_data_files")),
        sa.UniqueConstraint("job_pk", "device_id", "seq", name="uq_data_files_seq"),
    )
    op.create_index(op.f("ix_data_files_id"), "data_files", ["id"], unique=True)
    op.create_index(op.f("ix_data_files_job_pk"), "data_files", ["job_pk"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_data_files_job_pk"), table_name="data_files")
    op.drop_index(op.f("ix_data_files_id"), table_name="data_files")
    op.drop_table("data_files")
    op.drop_table("data_streams")
    op.drop_index("ix_data_records_job_pk_time", table_name="data_records")
    op.drop_index("ix_data_records_job_pk_pk", table_name="data_records")
    op.drop_table("data_records")
