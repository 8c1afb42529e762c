"""The device's durable buffer of collected records and files: a journal
(:mod:`edgefleet.agent.data.journal`) that each group of requests is
appended to and fdatasync'd (one write, one fsync) before any answer, and
SQLite (WAL) that the records move into in bulk (:meth:`Buffer.move`) past
``MOVE_BYTES``, at open, and before anything but an upload reads the records
table. Uploads read buffer.db first (its records are the oldest), then the
journal's records still in memory: a record the server commits before the
next move never becomes a row, only a count (``UPLOADED``).

What must survive a power cut is fsync'd before it is relied on: a record
before its 2xx (the journal), a file's row before its 201 and its deletion
before the file is unlinked (``synchronous=FULL``), buffer.db before a
journal file is deleted (a checkpoint). Moves, upload acks, evictions and
id pruning commit without an fsync: a crash that undoes one leaves the
records in the journal (moved again, once: see ``_insert``), or sends an
uploaded batch again (the server keeps one copy of each seq), or brings
back records evicted or ids pruned, with their counts.

Tables::

    records  id (upload order) | job | stream | seq | time | rid | payload | size
    streams  job | stream | next_seq | accepted | uploaded | evicted | rejected | last_time
    ids      job | stream | rid -> seq            (idempotency; kept RID_RETENTION)
    files    id | job | seq | name | size | sha256 | time | path

A record gets its ``seq`` (per job and stream, never reused: ``next_seq``
survives the deletion of every record) in the journal entry that stores it,
so a record the workload was told about is on disk with its number, and a
crash between server commit and local delete only makes the uploader send
it again (the server drops the duplicate). Everything here is synchronous and
called from one worker thread (:mod:`edgefleet.agent.data.service`); unit
tests drive it directly.

Quota: the sum of record payload sizes plus a fixed overhead per record and
the sizes of buffered files, against ``quota_bytes``. When full, a write is
refused (:class:`QuotaFull`), or with ``evict_oldest`` the oldest records
are deleted and counted per stream (reported to the server as ``evicted``).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from edgefleet.agent.data import moves
from edgefleet.agent.data.errors import BufferError, QuotaFull
from edgefleet.agent.data.files import FILES, Files
from edgefleet.agent.data.journal import ROTATE_BYTES, Journal, Row, encode
from edgefleet.agent.data.records import (
    RECORD_OVERHEAD,
    UPLOADED,
    Incoming,
    Planned,
    Stored,
    StreamStats,
    record_size,
)

log = logging.getLogger(__name__)

RID_RETENTION = 24 * 3600.0
MOVE_BYTES = 1024 * 1024  # journalled payload held in memory before it is moved into SQLite
LIGHT_MARGIN = 32 * 1024 * 1024  # room left under the quota for a group that must not evict

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL,
    time REAL NOT NULL, rid TEXT, payload TEXT NOT NULL, size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS streams (
    job TEXT NOT NULL, stream TEXT NOT NULL, next_seq INTEGER NOT NULL DEFAULT 1,
    accepted INTEGER NOT NULL DEFAULT 0, uploaded INTEGER NOT NULL DEFAULT 0,
    evicted INTEGER NOT NULL DEFAULT 0, rejected INTEGER NOT NULL DEFAULT 0,
    last_time REAL, PRIMARY KEY (job, stream)
);
CREATE TABLE IF NOT EXISTS ids (
    job TEXT NOT NULL, stream TEXT NOT NULL, rid TEXT NOT NULL, seq INTEGER NOT NULL,
    time REAL NOT NULL, PRIMARY KEY (job, stream, rid)
);
CREATE INDEX IF NOT EXISTS ids_time ON ids (time);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, seq INTEGER NOT NULL,
    name TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL, time REAL NOT NULL,
    path TEXT NOT NULL
);
"""


class Buffer(Files):
    """Records (here) and files (:class:`Files`) waiting for upload."""

    def __init__(self, path: Path, quota_bytes: int, evict_oldest: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.files_dir = path.parent / "files"
        self.files_dir.mkdir(exist_ok=True)
        self.quota_bytes = quota_bytes
        self.evict_oldest = evict_oldest
        # Held by whoever uses the buffer: its thread, or the loop writing a
        # group itself (agent/data/commit.py); nothing here is thread-safe.
        self.lock = threading.Lock()
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA cache_size=-512")  # 512 KiB: the agent must stay small
        self.db.executescript(_SCHEMA)
        self.journal = Journal(path.parent / f"{path.stem}.journal")
        self._insert(self.journal.recover())  # what a crash left in the journal
        self._rotate()
        self._unmoved: list[Row] = []  # journalled, not yet in SQLite
        self._unmoved_ids: dict[tuple[str, str, str], int] = {}  # (job, stream, rid) -> seq
        self._unmoved_bytes = 0
        self._next: dict[tuple[str, str], int] = {
            (j, s): n for j, s, n in self.db.execute("SELECT job, stream, next_seq FROM streams")
        }
        records = self.db.execute("SELECT count(*), coalesce(sum(size), 0) FROM records").fetchone()
        files = self.db.execute("SELECT coalesce(sum(size), 0) FROM files").fetchone()
        self.used = int(records[1]) + RECORD_OVERHEAD * int(records[0]) + int(files[0])
        self.pending = int(records[0])
        self._drop_orphan_files()

    def close(self) -> None:
        """Move what the journal holds (so buffer.db alone is whole after a clean
        stop, e.g. for an older agent), then close. A failed move is logged: the
        journal keeps the records and the next open moves them."""
        try:
            self.move()
        except sqlite3.Error as exc:
            log.warning("data buffer: journal not moved at close (%s); moved at next start", exc)
        self.journal.close()
        self.db.close()

    @contextlib.contextmanager
    def _tx(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction; ``durable=False`` commits without an fsync (WAL,
        ``synchronous=NORMAL``): for what a crash may undo without harm (see
        the module's docstring), so that fsync stays with the answers."""
        if not durable:
            self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        finally:
            if not durable:
                self.db.execute("PRAGMA synchronous=FULL")

    # -- writing --------------------------------------------------------------------------

    def write(self, requests: list[Incoming], move: bool = True) -> list[Stored | BufferError]:
        """Store several requests with one journal entry, one fsync for all
        (group commit): :meth:`prepare`, the journal's write, :meth:`settle`.
        ``move=False`` leaves a due move to a later write or call: the event
        loop writes only while the buffer is :attr:`light`."""
        planned = self.prepare(requests)
        if planned.data:
            self.journal.write(planned.data)
        return self.settle(planned, move)

    def prepare(self, requests: list[Incoming]) -> Planned:
        """Give the requests' new records their seqs and encode their journal
        entry, which the caller writes (:meth:`Journal.write`) before
        :meth:`settle`, holding :attr:`lock` throughout. Each request is stored
        whole or refused whole (:class:`QuotaFull`); eviction, when allowed,
        commits on its own first."""
        now = time.time()
        results: list[Stored | BufferError] = []
        entries: list[Row] = []
        ids: dict[tuple[str, str, str], int] = {}
        next_seq: dict[tuple[str, str], int] = {}
        added = 0  # bytes of the entries so far, not yet in self.used
        for request in requests:
            key = (request.job, request.stream)
            seq = next_seq.get(key) or self._next.get(key, 1)
            stored, fresh, need = Stored(), [], 0
            mine: dict[str, int] = {}  # this request's new record ids -> seq
            for rid, payload in request.records:
                if rid is not None:
                    known = mine.get(rid) or ids.get((*key, rid)) or self._known_id(key, rid)
                    if known is not None:
                        stored.duplicates += 1
                        stored.seqs.append(known)
                        continue
                    mine[rid] = seq
                fresh.append(Row(0, request.job, request.stream, seq, now, rid, payload))
                need += record_size(payload) + RECORD_OVERHEAD
                stored.seqs.append(seq)
                seq += 1
            try:
                self._make_room(added + need)
            except QuotaFull as exc:
                results.append(exc)
                continue
            added += need
            entries += fresh
            if mine:
                ids.update({(*key, rid): n for rid, n in mine.items()})
            next_seq[key] = seq
            results.append(stored)
        # A failed write burns these seqs (they may be on disk): never given twice.
        self._next.update(next_seq)
        data = encode(now, entries) if entries else b""
        return Planned(results, entries, ids, added, data)

    def settle(self, planned: Planned, move: bool = True) -> list[Stored | BufferError]:
        """Count a prepared group as stored, once its entry is durable; past
        ``MOVE_BYTES`` (and ``move``) move the journal into buffer.db."""
        self._unmoved += planned.entries
        self._unmoved_ids.update(planned.ids)
        self._unmoved_bytes += planned.added
        self.used += planned.added
        self.pending += len(planned.entries)
        if move and self._unmoved_bytes > MOVE_BYTES:
            try:
                self._relieve()
            except (sqlite3.Error, OSError) as exc:  # stored already: the group must not fail
                log.warning("data buffer: move into buffer.db failed (%s); retried later", exc)
        return planned.results

    @property
    def light(self) -> bool:
        """Whether a write of one group (up to ``LIGHT_MARGIN``) is an append to
        an open journal file and at most a look-up of record ids: no transaction
        (no move due past ``MOVE_BYTES``, no eviction possible), no new journal
        file to write full of zeros."""
        if self._unmoved_bytes > MOVE_BYTES or not self.journal.open:
            return False
        return not self.evict_oldest or self.used + LIGHT_MARGIN <= self.quota_bytes

    def _known_id(self, key: tuple[str, str], rid: str) -> int | None:
        seq = self._unmoved_ids.get((*key, rid))
        if seq is not None:
            return seq
        row = self.db.execute(
            "SELECT seq FROM ids WHERE job=? AND stream=? AND rid=?", (*key, rid)
        ).fetchone()
        return None if row is None else int(row[0])

    def move(self) -> None:
        """Move the journalled records into SQLite (one transaction, not
        fsync'd: the journal still holds them); past ``ROTATE_BYTES`` the
        journal starts a new file."""
        if self._unmoved:
            self._insert(self._unmoved)
            self._unmoved, self._unmoved_ids, self._unmoved_bytes = [], {}, 0
        if self.journal.size > ROTATE_BYTES:
            self._rotate()

    def _relieve(self) -> None:
        """Past ``MOVE_BYTES``: count the records the server has committed since
        the last move and drop them from memory; the rest follow into buffer.db
        only if the uploads are behind (over half of ``MOVE_BYTES`` left), or
        the journal is due to rotate, which needs all of its records moved."""
        done = 0
        for row in self._unmoved:
            if row.id != UPLOADED:
                break
            done += 1
        if done and self.journal.size <= ROTATE_BYTES:
            committed = self._unmoved[:done]
            self._insert(committed)
            self._unmoved = self._unmoved[done:]
            for row in committed:
                self._unmoved_bytes -= record_size(row.payload) + RECORD_OVERHEAD
                if row.rid is not None:
                    self._unmoved_ids.pop((row.job, row.stream, row.rid), None)
            if self._unmoved_bytes <= MOVE_BYTES // 2:
                return
        self.move()

    def _rotate(self) -> None:
        """Make buffer.db durable (a checkpoint: the WAL fsync'd, copied into the
        database, that fsync'd), then let the journal drop its older files. A
        checkpoint a reader blocks leaves them for the next rotation, or the
        next open, to try again (moving them twice is harmless)."""
        busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log.info("data buffer: checkpoint blocked by a reader; journal files kept for now")
            self.journal.close()  # the next append starts a new file
            return
        self.journal.rotate()

    def _insert(self, entries: list[Row]) -> None:
        """Move journalled records into buffer.db (:func:`moves.insert`: what is
        there already skipped, what the server has committed only counted)."""
        if entries:
            with self._tx(durable=False) as db:
                moves.insert(db, entries)

    def _make_room(self, need: int) -> None:
        """Refuse (QuotaFull) unless ``need`` more bytes fit, evicting the oldest
        records first when allowed (committed on their own: a crash after it
        only loses what eviction would have dropped anyway)."""
        if self.used + need <= self.quota_bytes:
            return
        if need > self.quota_bytes:
            raise QuotaFull(
                f"these records need {need} bytes, more than the device's whole data quota "
                f"({self.quota_bytes} bytes)"
            )
        if not self.evict_oldest:
            raise QuotaFull(
                f"the device's data buffer is full ({self.used} of {self.quota_bytes} bytes "
                "waiting for upload); retry later, or the operator can raise --data-quota-mb "
                "or allow --data-evict-oldest"
            )
        self.move()
        while self.used + need > self.quota_bytes:
            with self._tx(durable=False) as db:
                victims = db.execute(
                    "SELECT id, job, stream, size FROM records ORDER BY id LIMIT 500"
                ).fetchall()
                if not victims:
                    raise QuotaFull(
                        f"the device's data buffer is full of files ({self.used} of "
                        f"{self.quota_bytes} bytes) waiting for upload; retry later"
                    )
                freed, cut = 0, 0
                counts: dict[tuple[str, str], int] = {}
                for record_id, job, stream, size in victims:
                    freed += size + RECORD_OVERHEAD
                    counts[(job, stream)] = counts.get((job, stream), 0) + 1
                    cut = record_id
                    if self.used - freed + need <= self.quota_bytes:
                        break
                db.execute("DELETE FROM records WHERE id <= ?", (cut,))
                db.executemany(
                    "UPDATE streams SET evicted=evicted+? WHERE job=? AND stream=?",
                    [(n, j, s) for (j, s), n in counts.items()],
                )
            self.used -= freed
            self.pending -= sum(counts.values())

    # -- uploading ------------------------------------------------------------------------

    def batch(self, max_records: int, max_bytes: int) -> list[Row]:
        """The oldest records, at least one, up to the limits: from buffer.db
        (they are older), then straight from the journal's records in memory,
        which a connected agent's uploads keep up with, so that most records
        never cost an insert and a delete in SQLite."""
        rows = self.db.execute(
            "SELECT id, job, stream, seq, time, rid, payload, size FROM records "
            "ORDER BY id LIMIT ?",
            (max_records,),
        ).fetchall()
        batch: list[Row] = []
        total = 0
        for r in rows:
            total += r[7] + RECORD_OVERHEAD
            if batch and total > max_bytes:
                return batch
            batch.append(Row(*r[:7]))
        if len(rows) == max_records:  # buffer.db may hold more, older than the journal's
            return batch
        for row in self._unmoved:
            if row.id == UPLOADED:
                continue
            total += record_size(row.payload) + RECORD_OVERHEAD
            if batch and (total > max_bytes or len(batch) >= max_records):
                break
            batch.append(row)  # the same object: a move meanwhile gives it its id
        return batch

    def acknowledge(self, rows: list[Row], discarded: set[str] | None = None) -> None:
        """The server committed ``rows`` (or refuses the jobs in ``discarded``
        for good): delete them, count them."""
        if not rows:
            return
        if discarded:
            self.move()  # a discarded job's records are deleted from SQLite: all must be there
        # Read from the journal and not moved since: no row to delete.
        self._uploaded_unmoved([row for row in rows if row.id == 0])
        rows = [row for row in rows if row.id > 0]
        if not rows:
            return
        discarded = discarded or set()
        first, last = rows[0].id, rows[-1].id
        uploaded: dict[tuple[str, str], int] = {}
        rejected: dict[tuple[str, str], int] = {}
        for row in rows:
            into = rejected if row.job in discarded else uploaded
            into[(row.job, row.stream)] = into.get((row.job, row.stream), 0) + 1
        with self._tx(durable=False) as db:
            count, size = db.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM records WHERE id BETWEEN ? AND ?",
                (first, last),
            ).fetchone()
            db.execute("DELETE FROM records WHERE id BETWEEN ? AND ?", (first, last))
            db.executemany(
                "UPDATE streams SET uploaded=uploaded+? WHERE job=? AND stream=?",
                [(n, j, s) for (j, s), n in uploaded.items()],
            )
            db.executemany(
                "UPDATE streams SET rejected=rejected+? WHERE job=? AND stream=?",
                [(n, j, s) for (j, s), n in rejected.items()],
            )
            if discarded:
                marks = ",".join("?" * len(discarded))
                more = db.execute(
                    f"SELECT job, stream, count(*), coalesce(sum(size), 0) FROM records "
                    f"WHERE job IN ({marks}) GROUP BY job, stream",
                    tuple(discarded),
                ).fetchall()
                db.execute(f"DELETE FROM records WHERE job IN ({marks})", tuple(discarded))
                for job, stream, n, s in more:
                    db.execute(
                        "UPDATE streams SET rejected=rejected+? WHERE job=? AND stream=?",
                        (n, job, stream),
                    )
                    count += n
                    size += s
        self.used -= int(size) + RECORD_OVERHEAD * int(count)
        self.pending -= int(count)

    def _uploaded_unmoved(self, rows: list[Row]) -> None:
        """Committed records still only in the journal: marked, so that the
        next move counts them (as accepted and uploaded) without a row."""
        size = 0
        for row in rows:
            row.id = UPLOADED
            size += record_size(row.payload) + RECORD_OVERHEAD
        self.used -= size
        self.pending -= len(rows)

    # -- upkeep and reporting ---------------------------------------------------------------

    def prune_ids(self, now: float | None = None) -> int:
        cutoff = (now or time.time()) - RID_RETENTION
        with self._tx(durable=False) as db:
            return db.execute("DELETE FROM ids WHERE time < ?", (cutoff,)).rowcount

    def stats(self) -> list[StreamStats]:
        self.move()
        pending = {
            (j, s): (n, b, o)
            for j, s, n, b, o in self.db.execute(
                "SELECT job, stream, count(*), sum(size), min(time) FROM records "
                "GROUP BY job, stream"
            )
        }
        result = []
        for job, stream, accepted, uploaded, evicted, rejected, last in self.db.execute(
            "SELECT job, stream, accepted, uploaded, evicted, rejected, last_time FROM streams "
            "WHERE stream != ? ORDER BY job, stream",
            (FILES,),
        ):
            n, b, oldest = pending.get((job, stream), (0, 0, None))
            result.append(
                StreamStats(
                    job, stream, n, int(b or 0), oldest, accepted, uploaded, evicted, rejected, last
                )
            )
        return result

    def files_pending(self) -> dict[str, int]:
        return {j: n for j, n in self.db.execute("SELECT job, count(*) FROM files GROUP BY job")}
