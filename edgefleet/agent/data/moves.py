"""A move: journalled records into buffer.db, in one transaction the caller
holds (not fsync'd: the journal still has them until a checkpoint).

A move may meet records twice (recovery after a crash between a move and the
deletion of the journal file it came from, or a group whose append failed
and was retried), so it skips what buffer.db already has: a seq below its
stream's ``next_seq``, or a record id already stored. A record the server
committed straight from the journal (``UPLOADED``) becomes counts only, its
seq, its record id and its stream's accepted and uploaded numbers, never a
row that would only be deleted again, unless a trigger watches the records
table (a stream dataset keeps its stream's records, see
:mod:`edgefleet.agent.datasets.sources.stream`): then it is inserted for the
trigger and deleted in the same transaction.
"""

from __future__ import annotations

import sqlite3

from edgefleet.agent.data.journal import Row
from edgefleet.agent.data.records import UPLOADED, record_size


def insert(db: sqlite3.Connection, entries: list[Row]) -> None:
    """Move ``entries`` (oldest first); each one inserted gets its id in
    buffer.db, so that a batch read from the journal before this move is
    acknowledged by id."""
    next_seq: dict[tuple[str, str], int] = {}
    counts: dict[tuple[str, str], tuple[int, int, float]] = {}
    rows = []
    kept: list[Row] = []
    watched = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type='trigger' AND tbl_name='records' LIMIT 1"
    ).fetchone()
    for e in entries:
        key = (e.job, e.stream)
        if key not in next_seq:
            row = db.execute(
                "SELECT next_seq FROM streams WHERE job=? AND stream=?", key
            ).fetchone()
            next_seq[key] = 1 if row is None else int(row[0])
        if e.seq < next_seq[key]:
            continue
        if (
            e.rid is not None
            and db.execute(
                "SELECT 1 FROM ids WHERE job=? AND stream=? AND rid=?", (*key, e.rid)
            ).fetchone()
        ):
            continue
        if e.id != UPLOADED or watched:
            rows.append((e.job, e.stream, e.seq, e.time, e.rid, e.payload, record_size(e.payload)))
            kept.append(e)
        if e.rid is not None:  # later entries of this move see it as stored
            db.execute(
                "INSERT INTO ids (job, stream, rid, seq, time) VALUES (?, ?, ?, ?, ?)",
                (*key, e.rid, e.seq, e.time),
            )
        next_seq[key] = e.seq + 1
        n, up, _ = counts.get(key, (0, 0, 0.0))
        counts[key] = (n + 1, up + (e.id == UPLOADED), e.time)
    if rows:
        db.executemany(
            "INSERT INTO records (job, stream, seq, time, rid, payload, size) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        # One writer, one transaction: AUTOINCREMENT gave them consecutive ids.
        (last_id,) = db.execute("SELECT last_insert_rowid()").fetchone()
        committed = []
        for number, e in enumerate(kept, last_id - len(kept) + 1):
            if e.id == UPLOADED:
                committed.append((number,))
            else:
                e.id = number
        if committed:  # inserted only for the trigger
            db.executemany("DELETE FROM records WHERE id = ?", committed)
    for key, (n, up, last) in counts.items():
        db.execute("INSERT OR IGNORE INTO streams (job, stream) VALUES (?, ?)", key)
        db.execute(
            "UPDATE streams SET next_seq=?, accepted=accepted+?, uploaded=uploaded+?, "
            "last_time=? WHERE job=? AND stream=?",
            (next_seq[key], n, up, last, *key),
        )
