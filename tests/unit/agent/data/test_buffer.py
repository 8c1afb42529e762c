"""The agent's durable data buffer: seqs, durability across reopen (and a
crashed process), idempotent record ids, quota refusal, counted eviction."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgefleet.agent.data.buffer import Buffer
from edgefleet.agent.data.errors import QuotaFull
from edgefleet.agent.data.records import RECORD_OVERHEAD, Incoming, Stored


def rec(n: int, rid: str | None = None) -> tuple[str | None, str]:
    return rid, json.dumps({"n": n})


def write(buffer: Buffer, job: str, stream: str, *records: tuple[str | None, str]) -> Stored:
    (result,) = buffer.write([Incoming(job, stream, list(records))])
    assert isinstance(result, Stored), result
    return result


def test_seqs_are_per_stream_and_survive_reopen_and_full_upload(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    buffer = Buffer(path, 10**6)
    assert write(buffer, "j1", "a", rec(1), rec(2)).seqs == [1, 2]
    assert write(buffer, "j1", "b", rec(1)).seqs == [1]
    assert write(buffer, "j2", "a", rec(1)).seqs == [1]
    rows = buffer.batch(100, 10**6)
    assert [(r.job, r.stream, r.seq) for r in rows] == [
        ("j1", "a", 1),
        ("j1", "a", 2),
        ("j1", "b", 1),
        ("j2", "a", 1),
    ]
    buffer.acknowledge(rows)
    assert buffer.pending == 0 and buffer.used == 0
    buffer.close()
    # Everything was uploaded and deleted: the numbers still go on, never reused.
    again = Buffer(path, 10**6)
    assert write(again, "j1", "a", rec(3)).seqs == [3]
    stats = {(s.job, s.stream): s for s in again.stats()}
    assert stats[("j1", "a")].accepted == 3 and stats[("j1", "a")].uploaded == 2
    assert stats[("j1", "a")].pending == 1
    again.close()


def test_a_killed_process_loses_nothing_it_answered_for(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    script = f"""
import json, os
from pathlib import Path
from edgefleet.agent.data.buffer import Buffer
from edgefleet.agent.data.records import Incoming
b = Buffer(Path({str(path)!r}), 10**7)
for i in range(50):
    b.write([Incoming("j", "s", [(None, json.dumps({{"n": i}}))])])
print("written", flush=True)
os._exit(137)  # no close, no checkpoint: as a kill -9 would leave it
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert "written" in out.stdout, out.stderr
    buffer = Buffer(path, 10**7)
    rows = buffer.batch(1000, 10**7)
    assert [json.loads(r.payload)["n"] for r in rows] == list(range(50))
    assert [r.seq for r in rows] == list(range(1, 51))
    assert write(buffer, "j", "s", rec(50)).seqs == [51]
    buffer.close()


def test_record_ids_make_writes_idempotent(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", 10**6)
    first = write(buffer, "j", "s", rec(1, "x"), rec(2, "y"), rec(3))
    assert first.seqs == [1, 2, 3] and first.duplicates == 0
    again = write(buffer, "j", "s", rec(1, "x"), rec(4, "z"), rec(1, "x"))
    assert again.seqs == [1, 4, 1] and again.duplicates == 2
    # Still the same seq after the record was uploaded and deleted.
    buffer.acknowledge(buffer.batch(100, 10**6))
    assert write(buffer, "j", "s", rec(1, "x")).seqs == [1]
    # Ids are per stream.
    assert write(buffer, "j", "other", rec(1, "x")).seqs == [1]
    assert buffer.pending == 1
    buffer.close()


def test_quota_full_refuses_without_eviction(tmp_path: Path) -> None:
    one = len(json.dumps({"n": 1})) + RECORD_OVERHEAD
    buffer = Buffer(tmp_path / "b.db", quota_bytes=one * 3)
    write(buffer, "j", "s", rec(1), rec(2), rec(3))
    results = buffer.write([Incoming("j", "s", [rec(4)]), Incoming("j", "t", [rec(5)])])
    assert all(isinstance(r, QuotaFull) for r in results)
    assert "full" in str(results[0])
    assert buffer.pending == 3
    # Once uploaded, there is room again.
    buffer.acknowledge(buffer.batch(1, 10**6))
    assert write(buffer, "j", "s", rec(4)).seqs == [4]
    # A request larger than the whole quota says so.
    (huge,) = buffer.write([Incoming("j", "s", [rec(i) for i in range(10)])])
    assert isinstance(huge, QuotaFull) and "whole data quota" in huge.message
    buffer.close()


def test_eviction_drops_oldest_and_counts_them(tmp_path: Path) -> None:
    one = len(json.dumps({"n": 1})) + RECORD_OVERHEAD
    buffer = Buffer(tmp_path / "b.db", quota_bytes=one * 3, evict_oldest=True)
    write(buffer, "j", "a", rec(1), rec(2))
    write(buffer, "j", "b", rec(3))
    write(buffer, "j", "b", rec(4), rec(5))
    rows = buffer.batch(100, 10**6)
    assert [json.loads(r.payload)["n"] for r in rows] == [3, 4, 5]
    stats = {s.stream: s for s in buffer.stats()}
    assert stats["a"].evicted == 2 and stats["b"].evicted == 0
    assert stats["a"].pending == 0 and stats["b"].pending == 3
    assert buffer.used <= buffer.quota_bytes
    buffer.close()
    # Counts are durable.
    again = Buffer(tmp_path / "b.db", quota_bytes=one * 3, evict_oldest=True)
    assert {s.stream: s.evicted for s in again.stats()} == {"a": 2, "b": 0}
    assert again.used == one * 3
    again.close()


def test_discarded_jobs_are_dropped_and_counted(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", 10**6)
    write(buffer, "gone", "s", rec(1), rec(2), rec(3))
    write(buffer, "kept", "s", rec(1))
    first = buffer.batch(1, 10**6)
    buffer.acknowledge(first, {"gone"})
    assert [(r.job, r.seq) for r in buffer.batch(100, 10**6)] == [("kept", 1)]
    stats = {s.job: s for s in buffer.stats()}
    assert stats["gone"].rejected == 3 and stats["gone"].pending == 0
    buffer.close()


def test_batches_respect_byte_limits_but_always_carry_one(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", 10**7)
    big = json.dumps({"blob": "x" * 5000})
    write(buffer, "j", "s", (None, big), (None, big), (None, big))
    assert len(buffer.batch(100, 6000)) == 1
    assert len(buffer.batch(100, 1)) == 1
    assert len(buffer.batch(2, 10**7)) == 2
    buffer.close()


def test_files_count_against_the_quota(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", 1000)
    path = buffer.file_path("one")
    path.write_bytes(b"x" * 600)
    assert buffer.add_file("j", "a.bin", path, 600, "0" * 64) == 1
    with pytest.raises(QuotaFull):
        buffer.reserve(600)
    (pending,) = buffer.pending_files()
    assert pending.name == "a.bin" and pending.seq == 1
    buffer.file_done(pending)
    assert not path.exists() and buffer.used == 0
    buffer.reserve(600)
    # A file the agent wrote but never registered (crash) is cleaned at open.
    stray = buffer.file_path("stray")
    stray.write_bytes(b"?")
    buffer.close()
    Buffer(tmp_path / "b.db", 1000).close()
    assert not stray.exists()


def test_the_quota_counts_utf8_bytes_ascii_or_not(tmp_path: Path) -> None:
    """A record's size is its UTF-8 length (ASCII text is measured without
    encoding it), the same at the write and after a reopen (from buffer.db)."""
    path = tmp_path / "buffer.db"
    buffer = Buffer(path, 10**6)
    payloads = ['{"a":"x"}', '{"a":"é✓\U0001f600"}']
    write(buffer, "j", "s", *[(None, p) for p in payloads])
    expected = sum(len(p.encode()) + RECORD_OVERHEAD for p in payloads)
    assert buffer.used == expected
    buffer.close()
    reopened = Buffer(path, 10**6)
    assert reopened.used == expected
    reopened.close()
