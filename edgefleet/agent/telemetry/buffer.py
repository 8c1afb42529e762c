"""Samples waiting for the server, on disk in the state dir (SQLite, WAL).

    samples  seq INTEGER PRIMARY KEY AUTOINCREMENT | body (the Sample as JSON)

``AUTOINCREMENT`` makes a seq never reused, even after every row is deleted,
so an ack (``upto``) can never drop a sample taken after it was sent. The
buffer is bounded (``max_samples``): when full, the oldest samples go first
(a week-old CPU figure is worth less than today's) and are counted in
``evicted``. Synchronous and small; the part calls it from a worker thread.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from edgefleet.wire.telemetry import Sample


class SampleBuffer:
    def __init__(self, path: Path, max_samples: int) -> None:
        self.path = path
        self.max_samples = max_samples
        self.evicted = 0
        self._mutex = threading.Lock()  # one connection, used from worker threads
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # One row a minute needs no 2 MiB page cache (SQLite's default), and the
        # agent keeps this connection open for months (issue 18: idle <= 40 MB).
        self._db.execute("PRAGMA cache_size=-64")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS samples "
            "(seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)"
        )

    def close(self) -> None:
        """Closed under the mutex: a worker thread may still be inside a statement
        (a task awaiting ``to_thread`` is cancelled, its thread is not), and
        sqlite3 closing a connection another thread is using crashed the agent
        (SIGSEGV at ``edgefleet up``'s Ctrl-C). A call after this raises
        ``sqlite3.ProgrammingError`` instead."""
        with self._mutex:
            self._db.close()

    def next_seq(self) -> int:
        with self._mutex:
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'samples'"
            ).fetchone()
        return int(row[0]) + 1 if row else 1

    def add(self, sample: Sample) -> None:
        """Store one sample (its seq is the one :meth:`next_seq` gave), dropping
        the oldest beyond the bound, in one transaction."""
        with self._mutex, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO samples (seq, body) VALUES (?, ?)",
                (sample.seq, sample.model_dump_json()),
            )
            over = self._count() - self.max_samples
            if over > 0:
                self._db.execute(
                    "DELETE FROM samples WHERE seq IN "
                    "(SELECT seq FROM samples ORDER BY seq LIMIT ?)",
                    (over,),
                )
                self.evicted += over

    def _count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    def count(self) -> int:
        with self._mutex:
            return self._count()

    def oldest(self, limit: int) -> list[Sample]:
        with self._mutex:
            rows = self._db.execute(
                "SELECT body FROM samples ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [Sample.model_validate_json(body) for (body,) in rows]

    def ack(self, upto: int) -> int:
        """Forget every sample with ``seq <= upto``; returns how many went."""
        with self._mutex, self._db:
            return self._db.execute("DELETE FROM samples WHERE seq <= ?", (upto,)).rowcount
