"""Upload buffered records and files over the agent's connection, oldest first.

Records: one :class:`DataBatch` in flight at a time; the buffer deletes it
only once the server's :class:`DataAck` says it is committed. No ack within
``ACK_TIMEOUT``, or a new connection, and the same records go again (the
server stores each (job, device, stream, seq) once). A failed ack backs off
(1 s doubling to 30 s), so a broken server is not hammered. Records are
gathered before a batch is read, until ``GATHER_RECORDS`` wait or for
``GATHER_MAX`` seconds at most: a batch costs the buffer a move and an
acknowledgement (SQLite transactions on the buffer's thread) and the
server a few queries and a commit, whatever its size, so records trickling
in one by one (a lone client) would otherwise be shipped a few dozen at a
time and cost both sides several times the CPU per record of a busy
endpoint's. A record's 2xx never waits for this, only its upload.

Files: one mux stream each (kind ``data-file``), opened by the agent: the
bytes flow under the stream's own flow-control window, so a large file never
holds up heartbeats or records, and the server answers once it has stored the
file; only then is the local copy deleted.

Backlog: every ``REPORT_EVERY`` seconds, if anything changed (or after a
reconnect), a :class:`DataBacklog` tells the server what waits here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from edgefleet.agent.connection import Connection
from edgefleet.agent.data.buffer import Buffer
from edgefleet.agent.data.files import PendingFile
from edgefleet.agent.data.journal import Row
from edgefleet.wire.link import Link, TransportClosed
from edgefleet.wire.messages import (
    DATA_FILE_STREAM,
    DataAck,
    DataBacklog,
    DataBatch,
    StreamBacklog,
)
from edgefleet.wire.mux import MAX_FRAME, StreamError

log = logging.getLogger(__name__)
T = TypeVar("T")
SENDING = (TransportClosed, StreamError, OSError)  # the connection went away mid-send

BATCH_RECORDS = 2000
BATCH_BYTES = 512 * 1024
ACK_TIMEOUT = 30.0
FILE_TIMEOUT = 120.0
REPORT_EVERY = 5.0
REPORT_ANYWAY = 60.0
IDLE_CHECK = 5.0
GATHER = 0.05  # how often the waiting records are counted while a batch is gathered
GATHER_RECORDS = 500  # enough for a batch: it is read at once
GATHER_MAX = 0.25  # the longest a batch is gathered for, however few records wait


class Store(Protocol):
    """The buffer and the one thread it is used on (the data part)."""

    buffer: Buffer

    async def call(self, fn: Callable[..., T], *args: Any) -> T: ...


class Uploader:
    def __init__(self, service: Store, connection: Connection) -> None:
        self.service = service
        self.connection = connection
        self._wake = asyncio.Event()
        self._acks: dict[int, asyncio.Future[DataAck]] = {}
        self._batch = 0
        self._delay = 0.0
        self._reported: tuple[object, str, float] = (None, "", 0.0)

    def kick(self) -> None:
        self._wake.set()

    def _link(self) -> Link | None:
        connection = self.connection
        if not connection.connected.is_set():
            return None
        link = connection.link
        return link if link is not None and not link.closed.is_set() else None

    async def on_ack(self, ack: DataAck) -> None:
        future = self._acks.get(ack.batch)
        if future is not None and not future.done():
            future.set_result(ack)

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_CHECK)
            self._wake.clear()
            while (link := self._link()) is not None:
                await self._gather()
                try:
                    sent = await self._upload_records(link)
                    progressed = await self._upload_file(link) or sent > 0
                except (*SENDING, sqlite3.Error):
                    log.exception("data upload failed")
                    progressed = False
                if self._delay:
                    await asyncio.sleep(self._delay)
                if not progressed:
                    break

    async def _gather(self) -> None:
        """Let records gather for the next batch: until ``GATHER_RECORDS`` wait,
        at most ``GATHER_MAX`` seconds (what a record may wait here beyond its
        upload; its 2xx never waits for this)."""
        buffer = self.service.buffer
        deadline = time.monotonic() + GATHER_MAX
        while buffer.pending < GATHER_RECORDS and time.monotonic() < deadline:
            await asyncio.sleep(GATHER)

    def _failed(self) -> None:
        self._delay = min(30.0, max(1.0, self._delay * 2))

    async def _upload_records(self, link: Link) -> int:
        """How many records the server committed (0: none waited, or it failed)."""
        rows = await self.service.call(self.service.buffer.batch, BATCH_RECORDS, BATCH_BYTES)
        if not rows:
            return 0
        self._batch += 1
        batch = self._batch
        future: asyncio.Future[DataAck] = asyncio.get_running_loop().create_future()
        self._acks[batch] = future
        try:
            records = [_wire(r) for r in rows]
            await link.send(DataBatch.model_validate({"batch": batch, "records": records}))
            ack = await self._wait(link, future, ACK_TIMEOUT)
        except SENDING as exc:
            log.info("data batch %d not acknowledged (%s); will send again", batch, exc)
            return 0
        finally:
            self._acks.pop(batch, None)
        if ack is None:
            return 0
        if not ack.ok:
            log.warning("server could not store data batch %d: %s; retrying", batch, ack.error)
            self._failed()
            return 0
        for job, why in ack.discarded.items():
            log.warning("server discards the buffered records of job %s: %s", job, why)
        for where, why in list(ack.rejected.items())[:10]:
            log.warning("server rejected record %s: %s", where, why)
        await self.service.call(self.service.buffer.acknowledge, rows, set(ack.discarded))
        self._delay = 0.0
        return len(rows)

    async def _wait(
        self, link: Link, future: asyncio.Future[DataAck], timeout: float
    ) -> DataAck | None:
        """The ack, or None if the connection went away or it took too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(future), 0.5)
            if self._link() is not link:
                return None
        return None

    async def _upload_file(self, link: Link) -> bool:
        files = await self.service.call(self.service.buffer.pending_files, 1)
        if not files:
            return False
        file = files[0]
        try:
            reply = await asyncio.wait_for(self._send_file(link, file), FILE_TIMEOUT)
        except (StreamError, TimeoutError, OSError) as exc:
            log.info("file %s of job %s not uploaded yet: %s", file.name, file.job, exc)
            self._failed()
            return False
        if reply.get("ok"):
            await self.service.call(self.service.buffer.file_done, file)
            self._delay = 0.0
            return True
        if reply.get("discarded"):
            log.warning("server discards file %s of job %s: %s", file.name, file.job, reply)
            await self.service.call(self.service.buffer.file_done, file, True)
            return True
        log.warning("server could not store file %s: %s", file.name, reply.get("error"))
        self._failed()
        return False

    async def _send_file(self, link: Link, file: PendingFile) -> dict[str, object]:
        header = {
            "kind": DATA_FILE_STREAM,
            "job": file.job,
            "seq": file.seq,
            "name": file.name,
            "size": file.size,
            "sha256": file.sha256,
            "time": file.time,
        }
        stream = await link.mux.open(header)
        try:
            await stream.wait_accepted(30)
            with open(file.path, "rb") as source:
                while chunk := source.read(MAX_FRAME):
                    await stream.send(chunk)
            await stream.close()
            answer = await stream.read_all(64 * 1024)
        except BaseException:
            with contextlib.suppress(*SENDING):  # the link is gone: so is the stream
                await stream.reset("upload abandoned")
            raise
        try:
            reply = json.loads(answer or b"{}")
        except ValueError:
            return {"error": "unreadable answer"}
        return reply if isinstance(reply, dict) else {"error": "unreadable answer"}

    # -- backlog reports ----------------------------------------------------------------------

    async def report_loop(self) -> None:
        """Every second: a new connection gets the uploader going and a report at
        once; otherwise a report every ``REPORT_EVERY`` seconds if anything changed."""
        last = 0.0
        while True:
            await asyncio.sleep(1.0)
            link = self._link()
            fresh = link is not None and link is not self._reported[0]
            if fresh:
                self.kick()
            if fresh or time.monotonic() - last >= REPORT_EVERY:
                last = time.monotonic()
                try:
                    await self.report()
                except (*SENDING, sqlite3.Error) as exc:  # the next report says it all again
                    log.debug("data backlog not reported: %s", exc)

    async def report(self) -> None:
        link = self._link()
        if link is None:
            return
        buffer = self.service.buffer
        stats = await self.service.call(buffer.stats)
        files = await self.service.call(buffer.files_pending)
        message = DataBacklog(
            streams=[
                StreamBacklog(
                    job=s.job,
                    stream=s.stream,
                    pending=s.pending,
                    pending_bytes=s.pending_bytes,
                    oldest=s.oldest,
                    accepted=s.accepted,
                    evicted=s.evicted,
                    rejected=s.rejected,
                    last_time=s.last_time,
                )
                for s in stats
            ],
            files_pending=files,
            used_bytes=buffer.used,
            quota_bytes=buffer.quota_bytes,
        )
        fingerprint = message.model_dump_json()
        last_link, last_print, last_time = self._reported
        now = time.monotonic()
        if last_link is link and last_print == fingerprint and now - last_time < REPORT_ANYWAY:
            return
        await link.send(message)
        self._reported = (link, fingerprint, now)


def _wire(row: Row) -> dict[str, Any]:
    """A buffered row as the fields of a :class:`DataRecord <edgefleet.wire.data.DataRecord>`:
    the batch validates them all in one call (half the CPU of a model per record)."""
    return {
        "job": row.job,
        "stream": row.stream,
        "seq": row.seq,
        "time": row.time,
        "id": row.rid,
        "record": row.payload,
    }
