"""The sampler reads a fake /proc and /sys/class/thermal: CPU as a rate between
samples, memory from MemAvailable, loopback left out of network bytes, the
hottest thermal zone (none when the board has none)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefleet.agent.telemetry.sampler import Sampler


def fake_proc(root: Path, busy: int, idle: int) -> Path:
    proc = root / "proc"
    (proc / "net").mkdir(parents=True, exist_ok=True)
    (proc / "stat").write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\n")
    (proc / "meminfo").write_text(
        "MemTotal:        1000000 kB\nMemFree:          100000 kB\nMemAvailable:     250000 kB\n"
    )
    (proc / "uptime").write_text("12345.67 20000.00\n")
    (proc / "net" / "dev").write_text(
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets\n"
        "    lo: 999999 10 0 0 0 0 0 0 999999 10 0 0 0 0 0 0\n"
        "  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n"
        " wlan0: 500 5 0 0 0 0 0 0 700 7 0 0 0 0 0 0\n"
    )
    return proc


def test_sample_values(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, busy=100, idle=300)
    thermal = tmp_path / "thermal"
    for zone, milli in (("thermal_zone0", "45500"), ("thermal_zone1", "61200")):
        (thermal / zone).mkdir(parents=True)
        (thermal / zone / "temp").write_text(milli + "\n")
    sampler = Sampler(tmp_path, proc=proc, thermal=thermal)
    first = sampler.sample(1, now=1000.0)
    assert first.cpu == pytest.approx(25.0)  # since boot: 100 busy of 400
    fake_proc(tmp_path, busy=190, idle=310)  # then 90 busy of 100
    second = sampler.sample(2, now=1060.0)
    assert second.cpu == pytest.approx(90.0)
    assert second.memory == pytest.approx(75.0)
    assert second.memory_total == 1000000 * 1024
    assert second.net_rx == 1500 and second.net_tx == 2700
    assert second.temperature == pytest.approx(61.2)
    assert second.uptime == pytest.approx(12345.67)
    assert 0 < second.disk <= 100 and second.disk_total > 0  # the real tmp filesystem


def test_no_thermal_zone_means_no_temperature(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, busy=1, idle=1)
    sample = Sampler(tmp_path, proc=proc, thermal=tmp_path / "none").sample(1)
    assert sample.temperature is None
