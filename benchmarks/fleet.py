"""How far one server goes (issue 6): connect storm, steady state, fan-out,
API latency under load — with the fleet simulator, i.e. the real agent code
with the `sim` runtime, N agents in one extra process."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.harness import Report, percentile
from tests.support.procs import ADMIN_TOKEN, ServerProc, wait_for

SIM_APP = {"services": {"app": {"image": "sim/app:1", "command": ["run"]}}}


def _fleet(http: httpx.Client) -> dict[str, Any]:
    result: dict[str, Any] = http.get("/api/v1/fleet").json()
    return result


def _sample(pid: int, seconds: float) -> tuple[float, float]:
    """(CPU % of one core, RSS MB) of a process over ``seconds``."""
    process = psutil.Process(pid)
    process.cpu_percent(None)
    time.sleep(seconds)
    return process.cpu_percent(None), process.memory_info().rss / 1e6


def _times(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def run_size(
    report: Report, n: int, workdir: Path, *, steady_seconds: float = 30, heartbeat: float = 10.0
) -> None:
    size = f"N={n}"
    server = ServerProc(
        workdir, heartbeat=heartbeat, name=f"server-{n}", extra_args=["--log-level", "warning"]
    )
    server.start()
    sim: subprocess.Popen[bytes] | None = None
    log = open(workdir / f"sim-{n}.log", "wb")  # noqa: SIM115 (closed in finally)
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120
        ) as http:
            key = http.post("/api/v1/provisioning-keys", json={"labels": {"bench": "yes"}}).json()[
                "key"
            ]
            state = workdir / f"sim-{n}"
            started = time.monotonic()
            sim = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "edgefleet",
                    "sim",
                    "--server",
                    server.url,
                    "--devices",
                    str(n),
                    "--provisioning-key",
                    key,
                    "--state-dir",
                    str(state),
                    "--labels",
                    "site=a,b,c",
                    "--supervise-every",
                    "30",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            wait_for(
                lambda: _fleet(http)["online"] >= n,
                timeout=max(120, n / 10),
                interval=0.5,
                what=f"{n} online",
            )
            storm = time.monotonic() - started
            report.add(
                "connect storm",
                size,
                "enroll + connect, until all online",
                storm,
                "s",
                "",
                "sim and server share the 2 cores",
            )

            time.sleep(min(10, heartbeat))
            cpu, rss = _sample(server.process.pid, steady_seconds)  # type: ignore[union-attr]
            report.add(
                "steady state",
                size,
                f"server CPU at {heartbeat:g} s heartbeat",
                cpu,
                "% of one core",
                "< 50 % at N=10,000" if n >= 10000 else "",
            )
            report.add("steady state", size, "server RSS", rss, "MB")
            sim_cpu, sim_rss = _sample(sim.pid, 5)
            report.add(
                "steady state",
                size,
                "simulator process (N agents)",
                f"{sim_cpu:.0f} % CPU, {sim_rss:.0f} MB",
                "",
            )

            http.post(
                "/api/v1/applications", json={"name": f"bench{n}", "version": "1", "spec": SIM_APP}
            )
            t0 = time.monotonic()
            job = http.post(
                "/api/v1/jobs", json={"application": f"bench{n}", "selector": {"bench": "yes"}}
            ).json()
            created = _times(job["created_at"])

            def all_running() -> bool:
                state = http.get(f"/api/v1/jobs/{job['id']}", params={"devices": "false"}).json()
                return state["state"] == "running" and state["counts"].get("running", 0) >= n

            wait_for(all_running, timeout=max(120, n / 5), interval=0.25, what="fan-out")
            fanout = time.monotonic() - t0
            report.add(
                "fan-out",
                size,
                "job by selector, until all running",
                fanout,
                "s",
                "< 5 s at N=1,000" if n == 1000 else "",
            )
            per_device: dict[str, float] = {}
            cursor = None
            while True:
                page = http.get(
                    "/api/v1/events",
                    params={
                        "job": job["id"],
                        "kind": "job.device",
                        "limit": 1000,
                        "cursor": cursor,
                    },
                ).json()
                for event in page["items"]:
                    if (
                        event["data"].get("state") == "running"
                        and event["device"] not in per_device
                    ):
                        per_device[event["device"]] = _times(event["time"]) - created
                cursor = page["next"]
                if not cursor:
                    break
            latencies = list(per_device.values())
            report.add("fan-out", size, "per device p50", percentile(latencies, 50), "s")
            report.add("fan-out", size, "per device p99", percentile(latencies, 99), "s")

            for name, path, params in (
                ("GET /devices (page of 100)", "/api/v1/devices", {"limit": 100}),
                (
                    "GET /devices (page 5, selector)",
                    "/api/v1/devices",
                    {"limit": 100, "selector": "site=b"},
                ),
                ("GET /jobs/{id}", f"/api/v1/jobs/{job['id']}", {}),
            ):
                samples = []
                for _ in range(100):
                    begin = time.perf_counter()
                    response = http.get(path, params=params)
                    samples.append((time.perf_counter() - begin) * 1000)
                    assert response.status_code == 200
                report.add("API under load", size, f"{name} p50", percentile(samples, 50), "ms")
                report.add(
                    "API under load",
                    size,
                    f"{name} p99",
                    percentile(samples, 99),
                    "ms",
                    "< 200 ms at N=10,000" if n >= 10000 else "",
                )
    finally:
        if sim is not None:
            sim.terminate()
            try:
                sim.wait(60)
            except subprocess.TimeoutExpired:
                sim.kill()
        log.close()
        server.stop()


def run(report: Report, sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="ef-bench-") as tmp:
        for n in sizes:
            run_size(report, n, Path(tmp))
