"""Records, backlog reports and files arriving from agents.

A :class:`DataBatch` is stored in one transaction with ``INSERT ... ON
CONFLICT DO NOTHING`` (unique per job, device, stream and seq, and per record
id): a batch sent twice inserts once. The :class:`DataAck` goes out only
after the commit, and the agent deletes only after the ack, so every record
is on the server before it leaves the device. Each batch is stored in its own
task, so a slow database never stalls the agent's connection (heartbeats).

A device may write only for jobs it has (had) a ``job_devices`` row for;
records of other jobs are *discarded* (the ack says so, and the agent drops
them) so they never block its queue.

Nothing in a batch but the connection says who sent it: rows get the device
id of the authenticated session, and every record is checked and re-encoded
(:mod:`edgefleet.server.data.records`). A record that fails is *rejected*
alone — the rest of its batch is stored and acknowledged, the ack names the
rejected ones with the reason, and a ``data.rejected`` event records it — so
a bad record can neither wedge the agent's uploader nor forge another's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from edgefleet.server.agent_session import AgentSession
from edgefleet.server.context import ServerContext
from edgefleet.server.data.access import JobRef, writable
from edgefleet.server.data.objects import ObjectStoreError, open_store
from edgefleet.server.data.records import RecordError, check_sized
from edgefleet.server.data.rows import Counts, Row, RowWriter
from edgefleet.server.data.tables import DataFile, DataStream
from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.db.upsert import insert_for
from edgefleet.wire.link import TransportClosed
from edgefleet.wire.messages import (
    DATA_FILE_STREAM,
    DataAck,
    DataBacklog,
    DataBatch,
    DataRecord,
)
from edgefleet.wire.mux import Stream, StreamError

log = logging.getLogger(__name__)


def _when(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


class Ingest:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._tasks: set[asyncio.Task[None]] = set()
        self.spool = ctx.settings.data_dir / "spool"

    def register(self) -> None:
        self.ctx.hub.on(DataBatch, self.on_batch)
        self.ctx.hub.on(DataBacklog, self.on_backlog)
        self.ctx.hub.on_stream(DATA_FILE_STREAM, self.on_file)

    async def stop(self) -> None:
        for task in list(self._tasks):
            try:
                await asyncio.wait_for(task, 5)
            except TimeoutError:  # cancelled unacked: the agent keeps the batch and resends
                log.warning("a data batch was still being stored at stop; left unacked")

    # -- records --------------------------------------------------------------------------

    async def on_batch(self, session: AgentSession, batch: DataBatch) -> None:
        task = asyncio.create_task(self._answer(session, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, session: AgentSession, batch: DataBatch) -> None:
        begin = time.perf_counter()
        try:
            refused, rejected = await self.store(session, batch.records)
            ack = DataAck(batch=batch.batch, discarded=refused, rejected=rejected)
            log.debug(
                "stored batch %d of %d records from %s in %.0f ms",
                batch.batch,
                len(batch.records),
                session.device.id,
                (time.perf_counter() - begin) * 1000,
            )
        except Exception as exc:  # answered: the agent keeps the batch and says why
            log.exception("storing data batch from %s failed", session.device.id)
            ack = DataAck(batch=batch.batch, ok=False, error=f"{type(exc).__name__}: {exc}")
        try:
            await session.send(ack)
        except TransportClosed:  # unacked: the agent resends the batch when it is back
            log.info("device %s left before batch %d was acked", session.device.id, batch.batch)

    async def store(
        self, session: AgentSession, records: list[DataRecord]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Insert what is new, update the counters, commit. Returns the refused
        jobs, and the rejected records (``job/stream/seq`` -> why)."""
        device_id = session.device.id
        limits = self.ctx.settings
        async with self.ctx.session() as db:
            allowed, refused = await writable(
                db, session.device, {r.job for r in records}, limits.data_max_records_per_device
            )
            writer = RowWriter(db)
            received = writer.stamp(utcnow())
            rows: list[Row] = []
            sizes: list[int] = []  # per row: its payload's bytes and its time, for the counters
            times: list[float] = []
            rejected: dict[str, str] = {}
            bad: dict[str, list[str]] = {}
            max_bytes, max_depth = limits.data_record_max_bytes, limits.data_record_max_depth
            when = writer.when
            for r in records:
                job = allowed.get(r.job)
                if job is None:
                    continue
                try:
                    payload, size = check_sized(r, max_bytes=max_bytes, max_depth=max_depth)
                except RecordError as exc:
                    where = f"{r.job}/{r.stream[:64]}/{r.seq}"
                    rejected[where] = str(exc)
                    bad.setdefault(r.job, []).append(f"{where}: {exc}")
                    continue
                rows.append(
                    (job.pk, device_id, r.stream, r.seq, when(r.time), received, r.id, payload)
                )
                sizes.append(size)
                times.append(r.time)
            if rows:
                inserted = await writer.insert(db, rows)
                await writer.count(db, Counts.of(device_id, rows, sizes, times, inserted))
            await db.commit()
        for job_id, reasons in bad.items():
            self._rejected(session, allowed[job_id], reasons)
        return refused, rejected

    def _rejected(self, session: AgentSession, job: JobRef, reasons: list[str]) -> None:
        log.warning(
            "rejected %d records of job %s from device %s: %s",
            len(reasons),
            job.id,
            session.device.id,
            reasons[0],
        )
        self.ctx.events.record(
            "data.rejected",
            job.project_pk,
            f"device {session.device.name} sent {len(reasons)} record(s) of job {job.id} "
            f"the server will not store: {reasons[0]}",
            device_id=session.device.id,
            job_id=job.id,
            data={"rejected": len(reasons), "reasons": reasons[:10]},
        )

    # -- backlog reports ------------------------------------------------------------------

    async def on_backlog(self, session: AgentSession, report: DataBacklog) -> None:
        if not report.streams:
            return
        device_id = session.device.id
        async with self.ctx.session() as db:
            allowed, _ = await writable(db, session.device, {s.job for s in report.streams})
            pks = [j.pk for j in allowed.values()]
            before = {
                (row.job_pk, row.stream): row.evicted
                for row in await db.scalars(
                    select(DataStream).where(
                        DataStream.job_pk.in_(pks), DataStream.device_id == device_id
                    )
                )
            }
            now = utcnow()
            for s in report.streams:
                job = allowed.get(s.job)
                if job is None:
                    continue
                device_side = {
                    "pending": s.pending,
                    "pending_bytes": s.pending_bytes,
                    "oldest_pending": _when(s.oldest),
                    "accepted": s.accepted,
                    "evicted": s.evicted,
                    "rejected": s.rejected,
                    "reported_at": now,
                }
                stmt = insert_for(db, DataStream).values(
                    job_pk=job.pk, device_id=device_id, stream=s.stream, **device_side
                )
                await db.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["job_pk", "device_id", "stream"],
                        set_={k: getattr(stmt.excluded, k) for k in device_side},
                    )
                )
                lost = s.evicted - before.get((job.pk, s.stream), 0)
                if lost > 0:
                    self.ctx.events.record(
                        "data.evicted",
                        job.project_pk,
                        f"device {session.device.name} dropped {lost} buffered records of job "
                        f"{job.id} stream {s.stream}: its data quota was full "
                        f"({s.evicted} dropped so far)",
                        device_id=device_id,
                        job_id=job.id,
                        data={"stream": s.stream, "evicted": s.evicted, "new": lost},
                    )
            await db.commit()

    # -- files ----------------------------------------------------------------------------

    async def on_file(self, session: AgentSession, stream: Stream) -> None:
        header = stream.header
        try:
            job_id, seq = str(header["job"]), int(header["seq"])
            name, size, sha = str(header["name"])[:255], int(header["size"]), str(header["sha256"])
            when = _when(float(header["time"])) or utcnow()
        except (KeyError, TypeError, ValueError):
            await stream.refuse("a data-file stream needs job, seq, name, size, sha256, time")
            return
        async with self.ctx.session() as db:
            allowed, refused = await writable(db, session.device, {job_id})
        await stream.accept()
        if job_id in refused:
            await _reply(stream, {"discarded": True, "error": refused[job_id]})
            return
        settings = self.ctx.settings
        if size > settings.data_file_max_bytes:
            why = f"over {settings.data_file_max_bytes} bytes (data_file_max_bytes)"
            await _reply(stream, {"discarded": True, "error": why})
            return
        async with self.ctx.session() as db:
            stored = await db.scalar(
                select(func.count())
                .select_from(DataFile)
                .where(DataFile.job_pk == allowed[job_id].pk)
            )
        if (stored or 0) >= settings.data_max_files_per_job:
            why = (
                f"job {job_id} already has {stored} files, its limit "
                f"(data_max_files_per_job {settings.data_max_files_per_job})"
            )
            await _reply(stream, {"discarded": True, "error": why})
            return
        self.spool.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.spool)
        path = Path(tmp)
        try:
            digest = hashlib.sha256()
            received = 0
            with os.fdopen(fd, "wb") as out:
                while (chunk := await stream.recv()) is not None:
                    received += len(chunk)
                    if received > size:
                        break
                    digest.update(chunk)
                    out.write(chunk)
            if received != size or digest.hexdigest() != sha:
                await _reply(stream, {"error": f"got {received} of {size} bytes, or a bad sha256"})
                return
            job = allowed[job_id]
            key = f"{job.id}/{session.device.id}/{seq:08d}-{name.replace('/', '_')}"
            await open_store(self.ctx.settings.object_store, self.ctx.settings.data_dir).put(
                key, path
            )
            async with self.ctx.session() as db:
                await db.execute(
                    insert_for(db, DataFile)
                    .values(
                        id=new_id("f"),
                        created_at=utcnow(),
                        job_pk=job.pk,
                        device_id=session.device.id,
                        seq=seq,
                        name=name,
                        size=size,
                        sha256=sha,
                        time=when,
                        key=key,
                    )
                    .on_conflict_do_nothing()
                )
                await db.commit()
            await _reply(stream, {"ok": True})
        except ObjectStoreError as exc:
            log.warning("file %s from %s not stored: %s", name, session.device.id, exc.message)
            await _reply(stream, {"error": exc.message})
        except StreamError as exc:  # not acknowledged: the agent sends the file again
            log.info("file %s from %s not received: %s", name, session.device.id, exc.reason)
        finally:
            path.unlink(missing_ok=True)


async def _reply(stream: Stream, body: dict[str, Any]) -> None:
    with contextlib.suppress(StreamError):
        await stream.send(json.dumps(body).encode())
        await stream.close()


async def start(ctx: ServerContext) -> Callable[[], Awaitable[None]]:
    """Feature start hook: take data from agents; fail fast on a bad object store."""
    open_store(ctx.settings.object_store, ctx.settings.data_dir)
    ingest = Ingest(ctx)
    ingest.register()
    return ingest.stop
