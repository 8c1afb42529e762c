"""The on-disk sample buffer: seqs never reused, acks drop exactly what was
acknowledged, the bound evicts the oldest, and it all survives a reopen."""

from __future__ import annotations

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
