"""Collected data: records, per-stream counters and device backlog, files.

Records carry the device's public id rather than a foreign key: a job's data
belongs to the job's project and outlives the device that sent it. The two
unique constraints are what makes delivery exactly-once: an agent re-sending
a batch (it crashed before deleting it, or the ack was lost) inserts nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgefleet.server.db.base import Base, Keyed, PkType, utcnow


class DataRecordRow(Base):
    __tablename__ = "data_records"
    __table_args__ = (
        UniqueConstraint("job_pk", "device_id", "stream", "seq", name="uq_data_records_seq"),
        UniqueConstraint(
            "job_pk", "device_id", "stream", "record_id", name="uq_data_records_record_id"
        ),
        Index("ix_data_records_job_pk_pk", "job_pk", "pk"),
        Index("ix_data_records_job_pk_time", "job_pk", "time"),
    )

    pk: Mapped[int] = mapped_column(PkType, primary_key=True, autoincrement=True)
    job_pk: Mapped[int] = mapped_column(ForeignKey("jobs.pk", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(32))
    stream: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    time: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    record_id: Mapped[str | None] = mapped_column(String(128), default=None)
    payload: Mapped[str] = mapped_column(Text)


class DataStream(Base):
    """One (job, device, stream): what the server holds, and what the device
    last said waits there (``pending``) or was lost to its quota (``evicted``)."""

    __tablename__ = "data_streams"

    job_pk: Mapped[int] = mapped_column(ForeignKey("jobs.pk", ondelete="CASCADE"), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    records: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    first_time: Mapped[datetime | None] = mapped_column(default=None)
    last_time: Mapped[datetime | None] = mapped_column(default=None)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    oldest_pending: Mapped[datetime | None] = mapped_column(default=None)
    accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    evicted: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    reported_at: Mapped[datetime | None] = mapped_column(default=None)


class DataFile(Keyed, Base):
    """A file a workload handed to its agent; the bytes are in the object store."""

    __tablename__ = "data_files"
    __table_args__ = (UniqueConstraint("job_pk", "device_id", "seq", name="uq_data_files_seq"),)

    job_pk: Mapped[int] = mapped_column(ForeignKey("jobs.pk", ondelete="CASCADE"), index=True)
    device_id: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime]
    key: Mapped[str] = mapped_column(String(512))
