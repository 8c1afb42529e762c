"""Downsampling and retention, the pure core: averages weighted by sample
counts, late samples folded into the right bucket exactly, peaks and counters
kept, cut-off times from the retention settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edgefleet.server.telemetry.rollup import Point, bucket_start, cutoffs, downsample, rollup

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def sample(seconds: float, cpu: float, **kw: float) -> Point:
    return Point(
        time=T0 + timedelta(seconds=seconds),
        cpu=cpu,
        memory=kw.get("memory", 50.0),
        disk=kw.get("disk", 10.0),
        temperature=kw.get("temperature"),
        net_rx=int(kw.get("net_rx", 0)),
        uptime=kw.get("uptime", 0.0),
    )


def test_buckets_are_aligned_to_the_epoch() -> None:
    assert bucket_start(T0 + timedelta(minutes=14, seconds=59), 900) == T0
    assert bucket_start(T0 + timedelta(minutes=15), 900) == T0 + timedelta(minutes=15)


def test_a_bucket_averages_its_samples_and_keeps_peaks_and_counters() -> None:
    points = [
        sample(s, cpu, net_rx=1000 + s, uptime=100 + s) for s, cpu in [(0, 10), (60, 30), (120, 80)]
    ]
    (bucket,) = downsample(points, 900)
    assert bucket.time == T0
    assert bucket.count == 3
    assert bucket.cpu == pytest.approx(40.0)
    assert bucket.cpu_max == 80
    assert bucket.net_rx == 1120 and bucket.uptime == 220


def test_late_samples_fold_in_exactly() -> None:
    """Folding in two steps (the second batch arrived a day late) equals folding at once."""
    early = [sample(s, float(s % 7)) for s in range(0, 600, 60)]
    late = [sample(s, 90.0, temperature=50.0) for s in range(600, 900, 60)]
    at_once = rollup(early + late, 900)[T0]
    first = rollup(early, 900)
    folded = rollup(late, 900, first)[T0]
    assert folded.count == at_once.count == 15
    assert folded.cpu == pytest.approx(at_once.cpu)
    assert folded.cpu_max == at_once.cpu_max == 90.0
    # temperature averages only the samples that had one
    assert folded.temperature == pytest.approx(50.0) and folded.temps() == 5


def test_downsample_of_rollups_weights_by_their_counts() -> None:
    one = rollup([sample(0, 0.0)], 900)[T0]  # 1 sample at 0 %
    many = rollup([sample(900 + s, 100.0) for s in range(0, 600, 60)], 900)  # 10 at 100 %
    (hour,) = downsample([one, *many.values()], 3600)
    assert hour.count == 11
    assert hour.cpu == pytest.approx(1000 / 11)


def test_empty_buckets_are_left_out() -> None:
    got = downsample([sample(0, 1), sample(3 * 3600, 2)], 3600)
    assert [p.time for p in got] == [T0, T0 + timedelta(hours=3)]


def test_cutoffs_follow_the_settings() -> None:
    cuts = cutoffs(T0, raw_hours=48, rollup_days=30, log_days=7)
    assert cuts.raw == T0 - timedelta(days=2)
    assert cuts.rollups == T0 - timedelta(days=30)
    assert cuts.logs == T0 - timedelta(days=7)
