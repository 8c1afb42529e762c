"""The on-disk sample buffer: seqs never reused, acks drop exactly what was
acknowledged, the bound evicts the oldest, and it all survives a reopen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edgefleet.agent.telemetry.buffer import SampleBuffer
from edgefleet.wire.telemetry import Sample


def add(buffer: SampleBuffer, count: int) -> list[int]:
    seqs = []
    for _ in range(count):
        seq = buffer.next_seq()
        buffer.add(Sample(seq=seq, time=1000.0 + seq, cpu=1, memory=2, disk=3))
        seqs.append(seq)
    return seqs


def test_ack_drops_only_what_was_acknowledged_and_seqs_are_never_reused(tmp_path: Path) -> None:
    buffer = SampleBuffer(tmp_path / "t.db", max_samples=100)
    assert add(buffer, 5) == [1, 2, 3, 4, 5]
    batch = buffer.oldest(3)
    assert [s.seq for s in batch] == [1, 2, 3]
    add(buffer, 1)  # taken while the batch was in flight
    assert buffer.ack(batch[-1].seq) == 3
    assert [s.seq for s in buffer.oldest(10)] == [4, 5, 6]
    buffer.ack(6)
    assert buffer.count() == 0
    buffer.close()
    reopened = SampleBuffer(tmp_path / "t.db", max_samples=100)
    assert reopened.next_seq() == 7  # an ack can never drop a later sample


def test_bound_evicts_the_oldest(tmp_path: Path) -> None:
    buffer = SampleBuffer(tmp_path / "t.db", max_samples=10)
    add(buffer, 25)
    assert buffer.count() == 10
    assert [s.seq for s in buffer.oldest(1)] == [16]
    assert buffer.evicted == 15


CLOSE_WHILE_IN_USE = """
import sqlite3, sys, threading
from pathlib import Path
from edgefleet.agent.telemetry.buffer import SampleBuffer
from edgefleet.wire.telemetry import Sample

for round in range(60):
    buffer = SampleBuffer(Path(sys.argv[1]) / f"t{round}.db", max_samples=10)
    started = threading.Event()

    def use() -> None:
        started.set()
        try:
            while True:
                seq = buffer.next_seq()
                buffer.add(Sample(seq=seq, time=1.0, cpu=1, memory=2, disk=3))
                buffer.oldest(5)
        except sqlite3.ProgrammingError:
            return  # closed: the way a late sample ends

    worker = threading.Thread(target=use)
    worker.start()
    started.wait()
    buffer.close()
    worker.join()
print("ok")
"""


def test_closing_while_a_worker_thread_uses_it_does_not_crash(tmp_path: Path) -> None:
    """The agent's stop closes the buffer while a cancelled ``to_thread`` may still
    be running a statement (it crashed ``edgefleet up`` with SIGSEGV)."""
    done = subprocess.run(
        [sys.executable, "-c", CLOSE_WHILE_IN_USE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr[-2000:]
