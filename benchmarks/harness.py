"""Shared plumbing: figures, the machine, the results file, percentiles."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


@dataclass
class Figure:
    benchmark: str
    size: str
    name: str
    value: float | str
    unit: str = ""
    target: str = ""
    note: str = ""

    def row(self) -> str:
        value = f"{self.value:.3g}" if isinstance(self.value, float) else str(self.value)
        return f"| {self.benchmark} | {self.size} | {self.name} | {value} {self.unit} | {self.target} | {self.note} |"


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *args: object, **kwargs: object) -> Figure:
        figure = Figure(*args, **kwargs)  # type: ignore[arg-type]
        self.figures.append(figure)
        print(figure.row(), flush=True)
        return figure


MEMORY_FS = Path("/dev/shm")


@contextlib.contextmanager
def sim_state_root() -> Iterator[Path]:
    """A directory for the simulated devices' state dirs: in memory (tmpfs)
    where the machine has one, else a plain temporary directory.

    Real devices each write their state to their own disk; here thousands
    share one, the server's. On this ext4 a simulated device's in-place state
    write took 140-300 us during a 5,000-device fan-out against 13 us alone
    (most likely waiting on the file system journal that the server's fsyncs
    keep committing), so the simulator measured the shared disk, not the
    server. The state dirs are not durable anyway (docs/FLEET_SCALE.md)."""
    where = MEMORY_FS if MEMORY_FS.is_dir() and os.access(MEMORY_FS, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="ef-bench-sim-", dir=where) as tmp:
        yield Path(tmp)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> str:
    memory = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) // (1024 * 1024)
    except OSError:
        pass
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} cores ({cpu or platform.machine()}), {memory} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"load {load:.1f} at start"
    )


def commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, check=True
        ).stdout.strip()
        return sha + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write(report: Report, title: str) -> None:
    header = not RESULTS.exists()
    with RESULTS.open("a") as out:
        if header:
            out.write(
                "# Benchmark results\n\nAppended by `make bench` (benchmarks/run.py). Each section is one run: "
                "the date, the machine, the commit, and every figure. The machine is shared and noisy; "
                "compare ratios measured in the same run rather than absolute numbers across runs.\n"
            )
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        out.write(f"\n## {now} — {title}\n\n")
        out.write(f"- machine: {machine()}\n- commit: {commit()}\n")
        for note in report.notes:
            out.write(f"- {note}\n")
        out.write(
            "\n| benchmark | size | figure | value | target | note |\n|---|---|---|---|---|---|\n"
        )
        for figure in report.figures:
            out.write(figure.row() + "\n")


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
