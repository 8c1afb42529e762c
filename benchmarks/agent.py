"""One real agent: its idle footprint, and how fast a single deploy is
reported running (process runtime, and Podman with a local image)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.harness import Report, median, percentile
from tests.support.procs import ADMIN_TOKEN, AgentProc, ServerProc, wait_for


def _deploys(http: httpx.Client, app: str, device: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        begin = time.perf_counter()
        job = http.post("/api/v1/jobs", json={"application": app, "devices": [device]}).json()

        def running(job_id: str = job["id"]) -> bool:
            return (
                http.get(f"/api/v1/jobs/{job_id}", params={"devices": "false"}).json()["state"]
                == "running"
            )

        wait_for(running, 60, interval=0.01, what="running")
        times.append((time.perf_counter() - begin) * 1000)
        http.post(f"/api/v1/jobs/{job['id']}/cancel")
        time.sleep(0.5)
    return times


def run(report: Report, podman: Any | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="ef-bench-agent-") as tmp:
        workdir = Path(tmp)
        server = ServerProc(workdir, heartbeat=10, extra_args=["--log-level", "warning"])
        server.start()
        agent: AgentProc | None = None
        try:
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60
            ) as http:
                key = http.post("/api/v1/provisioning-keys", json={}).json()["key"]
                agent = AgentProc(
                    workdir,
                    [server.url],
                    key=key,
                    name="bench",
                    runtime="process",
                    extra_args=["--log-level", "warning"],
                )
                agent.start()
                device = agent.wait_enrolled()
                # Measured as a device runs day to day: restarted with its stored
                # credential, not in the run that enrolled it.
                agent.stop()
                agent.start()
                wait_for(
                    lambda: http.get(f"/api/v1/devices/{device}").json()["is_online"],
                    30,
                    what="online",
                )
                time.sleep(5)
                process = psutil.Process(agent.process.pid)  # type: ignore[union-attr]
                process.cpu_percent(None)
                time.sleep(30)
                cpu = process.cpu_percent(None)
                memory = process.memory_full_info()
                report.add(
                    "agent footprint",
                    "1 idle agent",
                    "RSS",
                    memory.rss / 1e6,
                    "MB",
                    "< 40 MB",
                    "process runtime, 10 s heartbeat; RSS counts shared libraries whole",
                )
                report.add(
                    "agent footprint",
                    "1 idle agent",
                    "PSS (shared pages split among their users)",
                    memory.pss / 1e6,
                    "MB",
                )
                report.add(
                    "agent footprint", "1 idle agent", "USS (its own pages)", memory.uss / 1e6, "MB"
                )
                report.add("agent footprint", "1 idle agent", "CPU over 30 s", cpu, "% of one core")

                spec = {
                    "services": {
                        "tick": {"x-edgefleet-runtime": "process", "command": ["sleep", "3600"]}
                    }
                }
                http.post(
                    "/api/v1/applications", json={"name": "one", "version": "1", "spec": spec}
                )
                times = _deploys(http, "one", device, 20)
                report.add(
                    "single deploy",
                    "process runtime",
                    "POST /jobs -> running, median of 20",
                    median(times),
                    "ms",
                    "< 300 ms",
                )
                report.add("single deploy", "process runtime", "p90", percentile(times, 90), "ms")
        finally:
            if agent is not None:
                agent.stop()
            server.stop()
        if podman is not None:
            _podman_deploys(report, workdir, podman)


def _podman_deploys(report: Report, workdir: Path, engine: Any) -> None:
    from tests.support.podman import IMAGE

    server = ServerProc(
        workdir, heartbeat=10, name="server-podman", extra_args=["--log-level", "warning"]
    )
    server.start()
    agent: AgentProc | None = None
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60
        ) as http:
            key = http.post("/api/v1/provisioning-keys", json={}).json()["key"]
            agent = AgentProc(
                workdir,
                [server.url],
                key=key,
                name="podman",
                runtime="docker",
                env={"DOCKER_HOST": engine.url},
                extra_args=["--log-level", "warning"],
            )
            agent.start()
            device = agent.wait_enrolled()
            wait_for(
                lambda: http.get(f"/api/v1/devices/{device}").json()["is_online"], 30, what="online"
            )
            spec = {
                "services": {"web": {"image": IMAGE, "command": ["sleep", "3600"], "init": True}}
            }
            http.post("/api/v1/applications", json={"name": "box", "version": "1", "spec": spec})
            times = _deploys(http, "box", device, 20)
            report.add(
                "single deploy",
                "Podman, local image",
                "POST /jobs -> running, median of 20",
                median(times),
                "ms",
                "",
                "includes the 2 s stability window for services without a healthcheck",
            )
    finally:
        if agent is not None:
            agent.stop()
        server.stop()
        engine.cleanup()
