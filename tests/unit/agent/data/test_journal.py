"""The records' journal in front of buffer.db: what a killed agent leaves there
is recovered exactly once (a torn or damaged tail dropped, records already
moved, or uploaded from buffer.db, not brought back; records uploaded
straight from the journal and not yet counted sent again, for the server to
drop), and a failed append never hands out a seq twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edgefleet.agent.data import buffer as buffer_module
from edgefleet.agent.data.buffer import Buffer
from edgefleet.agent.data.journal import Journal, Row, decode, encode
from edgefleet.agent.data.records import Incoming, Stored


def rec(n: int, rid: str | None = None) -> tuple[str | None, str]:
    return rid, json.dumps({"n": n})


def write(buffer: Buffer, *records: tuple[str | None, str], stream: str = "s") -> Stored:
    (result,) = buffer.write([Incoming("j", stream, list(records))])
    assert isinstance(result, Stored), result
    return result


def numbers(buffer: Buffer) -> list[tuple[int, int]]:
    """(seq, n) of every record buffered, in upload order."""
    return [(r.seq, json.loads(r.payload)["n"]) for r in buffer.batch(10_000, 10**8)]


def journal_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "b.journal").glob("*.log"))


def kill_after(tmp_path: Path, body: str) -> None:
    """Run ``body`` against a buffer in a child that dies as kill -9 would
    leave it: no close, nothing moved, no checkpoint."""
    script = (
        "import json, os\nfrom pathlib import Path\n"
        "from edgefleet.agent.data.buffer import Buffer\n"
        "from edgefleet.agent.data.records import Incoming\n"
        f"b = Buffer(Path({str(tmp_path / 'b.db')!r}), 10**7)\n"
        f"{body}\nprint('done', flush=True)\nos._exit(137)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert "done" in out.stdout, out.stderr


def test_a_killed_agent_leaves_answered_groups_in_the_journal_and_they_come_back_once(
    tmp_path: Path,
) -> None:
    kill_after(
        tmp_path,
        "for i in range(20):\n"
        "    b.write([Incoming('j', 's', [(f'r{i}', json.dumps({'n': i}))])])\n"
        "assert b.db.execute('SELECT count(*) FROM records').fetchone()[0] == 0",  # all journalled
    )
    assert journal_files(tmp_path)
    buffer = Buffer(tmp_path / "b.db", 10**7)
    assert numbers(buffer) == [(i + 1, i) for i in range(20)]
    # Ids survived the journal: a retry is a duplicate with the first copy's seq.
    again = write(buffer, rec(3, "r3"), rec(20, "r20"))
    assert again.seqs == [4, 21] and again.duplicates == 1
    buffer.close()
    # Opened again (the journal moved at the first open): nothing doubled.
    buffer = Buffer(tmp_path / "b.db", 10**7)
    assert numbers(buffer) == [*((i + 1, i) for i in range(20)), (21, 20)]
    buffer.close()


def test_a_torn_last_entry_is_dropped_and_its_seqs_given_again(tmp_path: Path) -> None:
    kill_after(
        tmp_path,
        "for i in range(3):\n    b.write([Incoming('j', 's', [(None, json.dumps({'n': i}))])])",
    )
    (path,) = journal_files(tmp_path)
    whole = encode(1.0, [Row(0, "j", "s", 4, 1.0, None, '{"n":3}')])
    written = len(path.read_bytes().rstrip(b"\0"))  # entries, then the file's zeros
    with open(path, "r+b") as out:
        out.seek(written)
        out.write(whole[: len(whole) // 2])  # the append whose fdatasync never returned
    buffer = Buffer(tmp_path / "b.db", 10**7)
    assert numbers(buffer) == [(1, 0), (2, 1), (3, 2)]
    assert write(buffer, rec(99)).seqs == [4]
    buffer.close()


def test_a_damaged_entry_ends_what_is_read_of_its_file(tmp_path: Path) -> None:
    first = encode(1.0, [Row(0, "j", "s", 1, 1.0, None, '{"n":0}')])
    second = encode(1.0, [Row(0, "j", "s", 2, 1.0, None, '{"n":1}')])
    damaged = second.replace(b"1}", b"7}")  # same length, checksum no longer matches
    assert damaged != second
    assert [e.seq for e in decode(first + second, "x")] == [1, 2]
    assert [e.seq for e in decode(first + damaged + second, "x")] == [1]
    assert [e.seq for e in decode(first + bytes(4096), "x")] == [1]  # room not written yet
    assert decode(b"", "x") == []
    assert decode(b"not an entry\n", "x") == []


def test_records_already_moved_or_uploaded_are_not_brought_back(tmp_path: Path) -> None:
    kill_after(
        tmp_path,
        "for i in range(5):\n"
        "    b.write([Incoming('j', 's', [(f'r{i}', json.dumps({'n': i}))])])\n"
        "b.move()\n"  # all five into SQLite; the journal file stays
        "rows = b.batch(2, 10**6)\n"
        "b.acknowledge(rows)\n"  # the server has the first two: deleted here
        "b.write([Incoming('j', 's', [(None, json.dumps({'n': 5}))])])",
    )
    buffer = Buffer(tmp_path / "b.db", 10**7)
    assert numbers(buffer) == [(3, 2), (4, 3), (5, 4), (6, 5)]
    stats = {s.stream: s for s in buffer.stats()}
    assert stats["s"].accepted == 6 and stats["s"].uploaded == 2
    # An uploaded record's id is still known: no second copy.
    assert write(buffer, rec(0, "r0")).duplicates == 1
    buffer.close()


def test_records_uploaded_straight_from_the_journal_are_counted_at_the_move_not_stored(
    tmp_path: Path,
) -> None:
    buffer = Buffer(tmp_path / "b.db", 10**7)
    write(buffer, rec(0, "r0"))
    write(buffer, rec(1), rec(2))
    used = buffer.used
    rows = buffer.batch(2, 10**6)  # read from the journal's records: nothing moved
    assert [r.id for r in rows] == [0, 0]
    assert buffer.db.execute("SELECT count(*) FROM records").fetchone() == (0,)
    buffer.acknowledge(rows)
    assert buffer.pending == 1 and buffer.used < used
    # The rest is sent next, and the acknowledged ones never again.
    assert [r.seq for r in buffer.batch(100, 10**6)] == [3]
    buffer.move()
    assert buffer.db.execute("SELECT seq FROM records").fetchall() == [(3,)]
    stats = {s.stream: s for s in buffer.stats()}
    assert (stats["s"].accepted, stats["s"].uploaded, stats["s"].pending) == (3, 2, 1)
    assert write(buffer, rec(0, "r0")).duplicates == 1  # its record id is still known
    assert write(buffer, rec(4)).seqs == [4]
    buffer.close()
    again = Buffer(tmp_path / "b.db", 10**7)
    assert numbers(again) == [(3, 2), (4, 4)]
    assert again.used == used - 2 * (len(rec(1)[1]) + buffer_module.RECORD_OVERHEAD) + (
        len(rec(4)[1]) + buffer_module.RECORD_OVERHEAD
    )
    again.close()


def test_a_batch_read_from_the_journal_and_moved_before_its_ack_is_deleted_by_id(
    tmp_path: Path,
) -> None:
    buffer = Buffer(tmp_path / "b.db", 10**7)
    write(buffer, rec(0), rec(1))
    rows = buffer.batch(100, 10**6)
    write(buffer, rec(2))
    buffer.move()  # e.g. past MOVE_BYTES while the batch was on its way
    assert [r.id for r in rows] == [1, 2]  # the same rows, now with their ids
    buffer.acknowledge(rows)
    assert numbers(buffer) == [(3, 2)]
    assert buffer.pending == 1
    stats = {s.stream: s for s in buffer.stats()}
    assert (stats["s"].accepted, stats["s"].uploaded) == (3, 2)
    buffer.close()


def test_a_batch_carries_buffer_db_records_first_then_the_journals(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", 10**7)
    write(buffer, rec(0), rec(1))
    buffer.move()
    write(buffer, rec(2), rec(3))
    rows = buffer.batch(3, 10**6)
    assert [(r.seq, r.id) for r in rows] == [(1, 1), (2, 2), (3, 0)]
    buffer.acknowledge(rows)
    assert numbers(buffer) == [(4, 3)]
    assert buffer.pending == 1
    assert [r.seq for r in buffer.batch(2, 10**6)] == [4]
    buffer.close()


def four_records_move(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Buffer:
    """A buffer whose move size is four of these tests' records."""
    monkeypatch.setattr(
        buffer_module, "MOVE_BYTES", 4 * (len(rec(0)[1]) + buffer_module.RECORD_OVERHEAD)
    )
    return Buffer(tmp_path / "b.db", 10**7)


def test_past_the_move_size_committed_records_become_counts_and_the_rest_stay_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = four_records_move(tmp_path, monkeypatch)
    write(buffer, rec(0, "r0"), rec(1), rec(2))
    buffer.acknowledge(buffer.batch(3, 10**6))  # the uploads keep up
    write(buffer, rec(3), rec(4))  # past the move size: a relief, not a move
    assert buffer.db.execute("SELECT count(*) FROM records").fetchone() == (0,)
    assert [r.seq for r in buffer.batch(100, 10**6)] == [4, 5]  # still in memory
    stats = {s.stream: s for s in buffer.stats()}  # stats move the rest
    assert (stats["s"].accepted, stats["s"].uploaded, stats["s"].pending) == (5, 3, 2)
    assert write(buffer, rec(0, "r0")).duplicates == 1
    buffer.close()
    again = Buffer(tmp_path / "b.db", 10**7)
    assert numbers(again) == [(4, 3), (5, 4)]
    again.close()


def test_uploads_behind_move_the_uncommitted_records_into_buffer_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = four_records_move(tmp_path, monkeypatch)
    write(buffer, rec(0))
    buffer.acknowledge(buffer.batch(1, 10**6))
    write(buffer, rec(1), rec(2), rec(3), rec(4))  # 4 waiting: over half the move size
    assert buffer.db.execute("SELECT seq FROM records").fetchall() == [(2,), (3,), (4,), (5,)]
    assert numbers(buffer) == [(2, 1), (3, 2), (4, 3), (5, 4)]
    buffer.close()


def test_a_killed_agent_sends_again_what_was_acknowledged_but_never_moved(
    tmp_path: Path,
) -> None:
    """The acknowledgement of records still only in the journal lives in
    memory: after a kill -9 they come back once and go again, which the
    server's one copy per seq absorbs; nothing is lost, no seq is reused."""
    kill_after(
        tmp_path,
        "for i in range(3):\n"
        "    b.write([Incoming('j', 's', [(None, json.dumps({'n': i}))])])\n"
        "b.acknowledge(b.batch(2, 10**6))\n",
    )
    buffer = Buffer(tmp_path / "b.db", 10**7)
    assert numbers(buffer) == [(1, 0), (2, 1), (3, 2)]
    assert write(buffer, rec(9)).seqs == [4]
    buffer.close()


def test_a_failed_append_answers_an_error_and_never_reuses_its_seqs(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", 10**7)
    assert write(buffer, rec(0)).seqs == [1]
    # The disk fails under the open journal file: writes to it now fail (EBADF).
    read_only = os.open(os.devnull, os.O_RDONLY)
    os.dup2(read_only, buffer.journal._fd)
    os.close(read_only)
    with pytest.raises(OSError):
        buffer.write([Incoming("j", "s", [rec(1, "lost")])])
    assert buffer.pending == 1
    # The next group goes to a new file; the failed group's seq is not given again,
    # and its id was never stored, so a retry is new.
    assert write(buffer, rec(1, "lost")).seqs == [3]
    assert len(journal_files(tmp_path)) == 2
    buffer.close()
    again = Buffer(tmp_path / "b.db", 10**7)
    assert numbers(again) == [(1, 0), (3, 1)]
    again.close()


def test_the_journal_rotates_once_moved_and_keeps_its_files_private(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.append(1.0, [Row(0, "j", "s", 1, 1.0, None, "{}")])
    first = sorted((tmp_path / "j").iterdir())
    assert len(first) == 1 and first[0].stat().st_mode & 0o777 == 0o600
    journal.rotate()
    journal.append(1.0, [Row(0, "j", "s", 2, 1.0, None, "{}")])
    (only,) = sorted((tmp_path / "j").iterdir())
    assert only != first[0] and [e.seq for e in journal.recover()] == [2]
    journal.close()


def test_a_move_past_the_rotation_size_checkpoints_and_drops_older_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(buffer_module, "ROTATE_BYTES", 100)
    buffer = Buffer(tmp_path / "b.db", 10**7)
    (opened,) = journal_files(tmp_path)
    for i in range(5):
        write(buffer, rec(i))
    assert buffer.journal.size > 100
    buffer.move()  # into buffer.db, a checkpoint, then a new file
    assert opened not in journal_files(tmp_path) and len(journal_files(tmp_path)) == 1
    assert (tmp_path / "b.db-wal").stat().st_size == 0  # the checkpoint truncated the WAL
    write(buffer, rec(5))
    assert numbers(buffer) == [(i + 1, i) for i in range(6)]
    buffer.close()


def test_sigkill_mid_writing_keeps_every_answered_record_once(tmp_path: Path) -> None:
    """A child stores groups as fast as it can and prints each group's seqs once
    ``write`` returned (the moment a 2xx would go out); SIGKILL lands wherever it
    lands, mid-append or mid-move. Reopened, every answered record is there once,
    and retrying them all by id stores nothing new."""
    script = (
        "import json, sys\nfrom pathlib import Path\n"
        "from edgefleet.agent.data.buffer import Buffer\n"
        "from edgefleet.agent.data.records import Incoming\n"
        f"b = Buffer(Path({str(tmp_path / 'b.db')!r}), 10**8)\n"
        "n = 0\n"
        "while True:\n"
        "    group = [Incoming('j', 's', [(f'r{n + i}', json.dumps({'n': n + i, 'pad': 'x' * 300}))])"
        " for i in range(8)]\n"
        "    results = b.write(group)\n"
        "    if n % 400 == 0:\n"
        "        b.batch(1, 10**6)\n"  # a move now and then, as the uploader does
        "    print(' '.join(str(r.seqs[0]) for r in results), flush=True)\n"
        "    n += 8\n"
    )
    answered: list[int] = []
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        while len(answered) < 3000:
            answered += [int(s) for s in child.stdout.readline().split()]
        child.send_signal(signal.SIGKILL)
        child.wait()
        answered += [int(s) for s in child.stdout.read().split()]  # printed before the kill
    assert child.returncode == -signal.SIGKILL
    buffer = Buffer(tmp_path / "b.db", 10**8)
    stored = numbers(buffer)
    seqs = [seq for seq, _ in stored]
    assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs)
    assert set(answered) <= set(seqs)  # n = seq - 1 for every record
    assert all(n == seq - 1 for seq, n in stored)
    retry = buffer.write(
        [Incoming("j", "s", [(f"r{seq - 1}", json.dumps({"n": seq - 1}))]) for seq in answered]
    )
    assert all(isinstance(r, Stored) and r.duplicates == 1 for r in retry)
    assert len(numbers(buffer)) == len(stored)
    buffer.close()


def test_a_failed_move_after_the_append_does_not_fail_the_stored_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group is durable once appended: housekeeping after it (a move, a new
    journal file on a full disk) failing must not turn its 2xx into an error."""
    monkeypatch.setattr(buffer_module, "MOVE_BYTES", 1)
    monkeypatch.setattr(buffer_module, "ROTATE_BYTES", 1)
    buffer = Buffer(tmp_path / "b.db", 10**7)

    def disk_full() -> None:  # a full disk cannot be had on demand here
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(buffer.journal, "rotate", disk_full)
    assert write(buffer, rec(0)).seqs == [1]
    assert write(buffer, rec(1)).seqs == [2]
    monkeypatch.undo()
    buffer.close()
    again = Buffer(tmp_path / "b.db", 10**7)
    assert numbers(again) == [(1, 0), (2, 1)]
    again.close()
