"""The fleet benchmark's timed phases that read the API: the API under load
(every request's latency kept, for as long as asked: ten minutes by default),
and a job's fan-out timed from the agents' own clocks (its polls of the job
timed as requests too: right after a fan-out is when every agent reports).

A stall is a request that took over :data:`STALL_MS`; the longest request of
the whole phase is reported as such, so a stall every few seconds cannot hide
behind a good p99. A tail over fewer than 100 samples is called a maximum.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from benchmarks.harness import Report, percentile

SIM_NOTE = "sim runtime (the agent's own code, workloads simulated, state dirs in memory)"
STALL_MS = 500.0


@dataclass
class Endpoint:
    """One request the load phase repeats, and its latencies (ms)."""

    name: str
    path: str
    params: dict[str, Any]
    p99_target: float | None = None  # ms
    p50_target: float | None = None  # ms
    samples: list[float] = field(default_factory=list)


@dataclass
class LoadRun:
    endpoints: list[Endpoint]
    seconds: float
    stalls: list[tuple[float, str, float]] = field(default_factory=list)  # (at s, name, ms)
    longest: tuple[float, str, float] = (0.0, "", 0.0)


def under_load(http: httpx.Client, endpoints: list[Endpoint], seconds: float) -> LoadRun:
    """Cycle through ``endpoints`` one request at a time for ``seconds``,
    timing every request (one client: what one API user sees while the fleet
    heartbeats and reports)."""
    run = LoadRun(endpoints, seconds)
    begin = time.monotonic()
    while time.monotonic() - begin < seconds:
        for endpoint in endpoints:
            timed_get(http, endpoint, run, begin)
    return run


def timed_get(http: httpx.Client, endpoint: Endpoint, run: LoadRun, begin: float) -> httpx.Response:
    """One request of ``endpoint``, its latency kept in ``run`` (``begin``: the
    run's start on the monotonic clock)."""
    start = time.perf_counter()
    response = http.get(endpoint.path, params=endpoint.params)
    took = (time.perf_counter() - start) * 1000
    assert response.status_code == 200, response.text[:300]
    endpoint.samples.append(took)
    at = time.monotonic() - begin
    if took > run.longest[2]:
        run.longest = (at, endpoint.name, took)
    if took > STALL_MS:
        run.stalls.append((at, endpoint.name, took))
    return response


def report_load(report: Report, size: str, run: LoadRun) -> None:
    bench = "API under load"
    for endpoint in run.endpoints:
        samples = endpoint.samples
        note = f"{len(samples)} requests over {run.seconds:g} s; {SIM_NOTE}"
        p50, tail = percentile(samples, 50), percentile(samples, 99)
        label = "p99" if len(samples) >= 100 else "maximum"
        for name, value, target in (
            ("p50", p50, endpoint.p50_target),
            (label, tail, endpoint.p99_target),
        ):
            figure = report.add(
                bench,
                size,
                f"{endpoint.name} {name}",
                value,
                "ms",
                f"< {target:g} ms" if target else "",
                note,
            )
            if target and not value < target:
                figure.note += "; MISSES its target"
    report_longest(report, bench, size, f"longest request (stall) in {run.seconds:g} s", run)


def report_longest(report: Report, bench: str, size: str, label: str, run: LoadRun) -> None:
    """The run's longest request against the stall bound, and every stall."""
    at, name, took = run.longest
    figure = report.add(
        bench,
        size,
        label,
        took,
        "ms",
        f"<= {STALL_MS:g} ms",
        f"{name} at {at:.0f} s; {len(run.stalls)} requests over {STALL_MS:g} ms",
    )
    if took > STALL_MS:
        figure.note += f" ({stalls_by_endpoint(run)}); MISSES its target; stalls at " + ", ".join(
            f"{s:.0f} s" for s, _, _ in run.stalls[:12]
        )


def stalls_by_endpoint(run: LoadRun) -> str:
    """How many of the stalls each endpoint had, most first: several endpoints
    slow at the same moment point at the server, not at one query."""
    counts = Counter(name for _, name, _ in run.stalls)
    return ", ".join(f"{name} {count}" for name, count in counts.most_common())


def _pages(http: httpx.Client, path: str) -> Iterator[dict[str, Any]]:
    params: dict[str, Any] = {"limit": 500}
    while True:
        page = http.get(path, params=params).json()
        yield from page["items"]
        if not page.get("next"):
            return
        params["cursor"] = page["next"]


def _when(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def fanout_on_agents(http: httpx.Client, job: dict[str, Any], service: str) -> list[float]:
    """Seconds from the job's creation (the server's clock) to each device's
    ``service`` starting (that agent's clock, as it reported ``started_at``):
    the agents and the server share this host, so the clocks are one."""
    created = _when(job["created_at"])
    times = []
    for row in _pages(http, f"/api/v1/jobs/{job['id']}/devices"):
        started = (row.get("services") or {}).get(service, {}).get("started_at")
        if started:
            times.append(_when(started) - created)
    return times


def report_fanout(
    report: Report, size: str, n: int, polled: float, times: list[float], limit: float | None
) -> None:
    """``limit``: the target in seconds for the last device, if this size has one."""
    bench = "fan-out"
    last = max(times, default=float("nan"))
    figure = report.add(
        bench,
        size,
        "job by selector: last device running (agents' clocks)",
        last,
        "s",
        f"<= {limit:g} s" if limit is not None else "",
        f"{len(times)} of {n} devices reported a start; {SIM_NOTE}",
    )
    if limit is not None and not last <= limit:
        figure.note += "; MISSES its target"
    report.add(bench, size, "per device p50 (agents' clocks)", percentile(times, 50), "s")
    label = "per device p99" if len(times) >= 100 else "per device maximum"
    report.add(bench, size, f"{label} (agents' clocks)", percentile(times, 99), "s")
    report.add(
        bench,
        size,
        "until the API shows all running (polled)",
        polled,
        "s",
        "",
        "includes the status flush and the 0.25 s poll",
    )
