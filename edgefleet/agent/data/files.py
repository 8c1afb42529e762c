"""Files POSTed to the data endpoint, as the buffer keeps them until uploaded:
each written and fsync'd under ``files/`` first, then registered in
buffer.db's ``files`` table (``synchronous=FULL``) before its 201; deleted
from the table (fsync'd) before the file is unlinked. A file counts against
the same quota as records, but never evicts them.

:class:`Files` is a part of :class:`edgefleet.agent.data.buffer.Buffer`
(its files, as opposed to its records), used on the buffer's thread only.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from edgefleet.agent.data.errors import QuotaFull

FILES = "#files"  # the seq counter of files; no stream name can start with "#"


@dataclass
class PendingFile:
    id: int
    job: str
    seq: int
    name: str
    size: int
    sha256: str
    time: float
    path: Path


class Files:
    """The file half of the buffer (see the module's docstring); the buffer
    supplies its database, quota and transactions."""

    db: sqlite3.Connection
    files_dir: Path
    quota_bytes: int
    used: int
    _next: dict[tuple[str, str], int]

    def _tx(self, durable: bool = True) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One transaction (the buffer's)."""
        raise NotImplementedError

    def file_path(self, name: str) -> Path:
        return self.files_dir / name

    def reserve(self, size: int) -> None:
        """Check (before receiving a file) that ``size`` more bytes fit. Files
        never evict records: they are refused when the buffer is full."""
        if self.used + size > self.quota_bytes:
            raise QuotaFull(
                f"the device's data buffer has no room for a {size}-byte file "
                f"({self.used} of {self.quota_bytes} bytes used); retry later"
            )

    def add_file(self, job: str, name: str, path: Path, size: int, sha256: str) -> int:
        """Register a file already written and fsync'd at ``path``; returns its seq."""
        self.reserve(size)
        key = (job, FILES)
        with self._tx() as db:
            seq = self._next.get(key)
            if seq is None:
                db.execute("INSERT OR IGNORE INTO streams (job, stream) VALUES (?, ?)", key)
                seq = 1
            db.execute(
                "INSERT INTO files (job, seq, name, size, sha256, time, path) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job, seq, name, size, sha256, time.time(), path.name),
            )
            db.execute(
                "UPDATE streams SET next_seq=?, accepted=accepted+1, last_time=? "
                "WHERE job=? AND stream=?",
                (seq + 1, time.time(), *key),
            )
        self._next[key] = seq + 1
        self.used += size
        return seq

    def pending_files(self, limit: int = 10) -> list[PendingFile]:
        rows = self.db.execute(
            "SELECT id, job, seq, name, size, sha256, time, path FROM files ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            PendingFile(
                id=r[0],
                job=r[1],
                seq=r[2],
                name=r[3],
                size=r[4],
                sha256=r[5],
                time=r[6],
                path=self.files_dir / r[7],
            )
            for r in rows
        ]

    def file_done(self, file: PendingFile, rejected: bool = False) -> None:
        with self._tx() as db:
            gone = db.execute("DELETE FROM files WHERE id=?", (file.id,)).rowcount
            column = "rejected" if rejected else "uploaded"
            db.execute(
                f"UPDATE streams SET {column}={column}+? WHERE job=? AND stream=?",
                (gone, file.job, FILES),
            )
        if gone:
            self.used -= file.size
        with contextlib.suppress(FileNotFoundError):
            file.path.unlink()

    def _drop_orphan_files(self) -> None:
        """Files written but never registered (a crash in between) are garbage."""
        known = {r[0] for r in self.db.execute("SELECT path FROM files")}
        for entry in self.files_dir.iterdir():
            if entry.name not in known:
                with contextlib.suppress(OSError):
                    entry.unlink()
