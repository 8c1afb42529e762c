"""The records' journal: an append-only log in front of ``buffer.db``, so that
a group commit is one ``write`` and one ``fdatasync`` rather than a SQLite
transaction (a dozen page writes, six file locks and ~230 us of CPU for a
single record)::

    group commit --append + fdatasync--> journal/<n>.log      (the 2xx only now)
    buffer thread --move: one SQLite transaction--> buffer.db (records, ids, streams)
    after a move, past ROTATE_BYTES: a new file; the older ones are deleted

Entries are written in place into a file prepared full of zeros (see
``PREALLOCATE_BYTES``); reading ignores the zeros after the last entry.
One entry per group commit, one line: ``<crc32 hex> <JSON>\\n``, the JSON
``[time, [[job, stream, seq, rid, payload], ...]]`` holding every record the
group stored. A crash therefore loses a whole group or nothing, and nothing
of a lost group was answered. Reading a file stops at its first line that is
torn (no newline) or fails its checksum: only the last append can be, the one
whose ``fdatasync`` never returned.

Moving is idempotent (:meth:`edgefleet.agent.data.buffer.Buffer.move`): a
record whose seq is below its stream's ``next_seq`` in buffer.db is already
there, or was uploaded and deleted; so a crash between a move and the
deletion of the file it came from only makes recovery skip those records.
A new file's directory entry is fsync'd before anything is appended to it.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from edgefleet.agent.data.compact import compact_encoder

log = logging.getLogger(__name__)

ROTATE_BYTES = 4 * 1024 * 1024
# A new file is written full of zeros first (real blocks, not fallocate's
# unwritten extents), so that an entry overwrites blocks the file already has:
# its fdatasync then flushes data only, and does not wait for the file
# system's journal to commit a new size, a commit every other writer on the
# disk shares. Past this size the file simply grows.
PREALLOCATE_BYTES = ROTATE_BYTES + 1024 * 1024
PREALLOCATE_CHUNK = 256 * 1024
SUFFIX = ".log"


@dataclass
class Row:
    """A buffered record; ``id`` is its upload order in buffer.db (0 while it
    is only in the journal)."""

    id: int
    job: str
    stream: str
    seq: int
    time: float
    rid: str | None
    payload: str


_compact = compact_encoder(allow_nan=True)  # built once


def encode(time: float, entries: list[Row]) -> bytes:
    text = _compact([time, [[e.job, e.stream, e.seq, e.rid, e.payload] for e in entries]])
    body = text.encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode(data: bytes, name: str) -> list[Row]:
    """The entries of one file's bytes, up to the first torn or damaged line."""
    entries: list[Row] = []
    lines = data.rstrip(b"\0").split(b"\n")  # zeros: the file's room not written yet
    for number, line in enumerate(lines[:-1], 1):  # the last piece has no newline: torn
        crc, _, body = line.partition(b" ")
        try:
            if int(crc, 16) != zlib.crc32(body):
                raise ValueError("checksum mismatch")
            time, records = json.loads(body)
            for job, stream, seq, rid, payload in records:
                entries.append(Row(0, job, stream, int(seq), float(time), rid, payload))
        except (ValueError, TypeError) as exc:
            log.warning(
                "data journal %s: line %d is damaged (%s); the rest ignored", name, number, exc
            )
            return entries
    if lines[-1]:
        log.info("data journal %s: a torn last entry (never answered) is dropped", name)
    return entries


class Journal:
    """The journal files in ``directory``; one is open for appending."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, exist_ok=True)
        self.dir = directory
        self.size = 0
        self._fd = -1
        self._number = max((n for n, _ in self._files()), default=0)

    @property
    def open(self) -> bool:
        """Whether a file is open for appending (else the next append prepares one)."""
        return self._fd >= 0

    def _files(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.dir.iterdir():
            if path.suffix == SUFFIX and path.stem.isdigit():
                found.append((int(path.stem), path))
        return sorted(found)

    def recover(self) -> list[Row]:
        """Every complete entry of every file, oldest first (before :meth:`rotate`)."""
        entries: list[Row] = []
        for _, path in self._files():
            entries += decode(path.read_bytes(), path.name)
        return entries

    def append(self, time: float, entries: list[Row]) -> None:
        """Write one entry and fdatasync it (see :meth:`write`)."""
        self.write(encode(time, entries))

    def write(self, data: bytes) -> None:
        """Write one encoded entry (:func:`encode`) to the open file and
        fdatasync it; both release the GIL, so a group commit runs this on a
        thread while the loop reads the next requests. On failure (OSError) the
        entry may be half on disk: that file is left, and the next append
        starts a new one (recovery reads each file up to its damage)."""
        if self._fd < 0:
            self._open_next()
        try:
            written = os.pwrite(self._fd, data, self.size)
            if written != len(data):
                raise OSError(f"short write to the data journal ({written} of {len(data)} bytes)")
            os.fdatasync(self._fd)
        except OSError:
            self.close()
            raise
        self.size += len(data)

    def rotate(self) -> None:
        """Start a new file and delete the older ones: call only once every
        entry written so far is durably in buffer.db."""
        self.close()
        self._open_next()
        for number, path in self._files():
            if number < self._number:
                path.unlink(missing_ok=True)

    def _open_next(self) -> None:
        self._number += 1
        path = self.dir / f"{self._number:08d}{SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self.size = 0
        try:
            zeros = bytes(PREALLOCATE_CHUNK)
            for offset in range(0, PREALLOCATE_BYTES, PREALLOCATE_CHUNK):
                os.pwrite(self._fd, zeros, offset)
            os.fsync(self._fd)
            fsync_dir(self.dir)  # the file's name is durable before any 2xx depends on it
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
