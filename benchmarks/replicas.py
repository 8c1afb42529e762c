"""Scale-out (issue 11): one, two and three replicas on this machine, side by
side in one run — devices held, fan-out time, the server tier's total CPU
and RSS — and the cost of a cross-replica exec round trip."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from benchmarks.harness import Report, median, sim_state_root
from tests.support import postgres
from tests.support.cluster import NatsProc
from tests.support.procs import ADMIN_TOKEN, AgentProc, ServerProc, wait_for

SIM_APP = {"services": {"app": {"image": "sim/app:1", "command": ["run"]}}}


def _tier(replicas: list[ServerProc], seconds: float) -> tuple[float, float]:
    processes = [psutil.Process(r.process.pid) for r in replicas]  # type: ignore[union-attr]
    for p in processes:
        p.cpu_percent(None)
    time.sleep(seconds)
    return sum(p.cpu_percent(None) for p in processes), sum(
        p.memory_info().rss for p in processes
    ) / 1e6


def run_tier(
    report: Report, count: int, devices: int, workdir: Path, sim_root: Path | None = None
) -> None:
    admin = postgres.ensure_server()
    url, name = postgres.fresh_database(admin)
    nats = NatsProc(workdir)
    nats.start()
    replicas = [
        ServerProc(
            workdir,
            database_url=url,
            name=f"r{count}-{i}",
            heartbeat=10,
            extra_args=["--bus", nats.url, "--replica-id", f"r{i + 1}", "--log-level", "warning"],
        )
        for i in range(count)
    ]
    sim: subprocess.Popen[bytes] | None = None
    agents: list[AgentProc] = []
    try:
        for r in replicas:
            r.start(wait=False)
        for r in replicas:
            r.wait_ready()
        size = f"{count} replica(s), {devices} devices"
        with httpx.Client(
            base_url=replicas[0].url,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=120,
        ) as http:
            key = http.post("/api/v1/provisioning-keys", json={"labels": {"bench": "yes"}}).json()[
                "key"
            ]
            args = [
                sys.executable,
                "-m",
                "edgefleet",
                "sim",
                "--devices",
                str(devices),
                "--provisioning-key",
                key,
                "--state-dir",
                str((sim_root or workdir) / f"sim-{count}"),
                "--supervise-every",
                "30",
            ]
            for r in replicas:
                args += ["--server", r.url]
            started = time.monotonic()
            sim = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(
                lambda: http.get("/api/v1/fleet").json()["online"] >= devices,
                max(120, devices / 10),
                0.5,
                "online",
            )
            report.add(
                "replicas", size, "connect storm until all online", time.monotonic() - started, "s"
            )
            spread: dict[str, int] = {}
            cursor = None
            while True:  # every device, page by page
                page = http.get("/api/v1/devices", params={"limit": 1000, "cursor": cursor}).json()
                for d in page["items"]:
                    spread[d["replica"]] = spread.get(d["replica"], 0) + 1
                cursor = page["next"]
                if not cursor:
                    break
            report.add(
                "replicas",
                size,
                "devices held per replica",
                str(dict(sorted(spread.items()))),
                "",
                "",
                "the simulator lists the replicas to device i starting at the i-th",
            )
            elsewhere = devices - spread.get("r1", 0)
            time.sleep(10)
            cpu, rss = _tier(replicas, 20)
            report.add("replicas", size, "server tier CPU (sum)", cpu, "% of one core")
            report.add("replicas", size, "server tier RSS (sum)", rss, "MB")
            http.post("/api/v1/applications", json={"name": "b", "version": "1", "spec": SIM_APP})
            t0 = time.monotonic()
            job = http.post(
                "/api/v1/jobs", json={"application": "b", "selector": {"bench": "yes"}}
            ).json()
            wait_for(
                lambda: (
                    http.get(f"/api/v1/jobs/{job['id']}", params={"devices": "false"})
                    .json()["counts"]
                    .get("running", 0)
                    >= devices
                ),
                max(120, devices / 5),
                0.25,
                "fan-out",
            )
            report.add(
                "replicas",
                size,
                "fan-out until all running",
                time.monotonic() - t0,
                "s",
                "",
                f"job posted on r1; {elsewhere:,} of {devices:,} devices held by other "
                "replicas (delivered across the bus)",
            )
        if count >= 2:
            # cross-replica vs same-replica exec, with one real agent held by replica 1
            with httpx.Client(
                base_url=replicas[0].url,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                timeout=60,
            ) as http:
                key = http.post("/api/v1/provisioning-keys", json={}).json()["key"]
            agent = AgentProc(
                workdir,
                [replicas[0].url],
                key=key,
                name=f"exec{count}",
                runtime="process",
                extra_args=["--log-level", "warning"],
            )
            agents.append(agent)
            agent.start()
            device = agent.wait_enrolled()
            timings: dict[str, list[float]] = {"same replica": [], "cross replica": []}
            for label, replica in (("same replica", replicas[0]), ("cross replica", replicas[1])):
                with httpx.Client(
                    base_url=replica.url,
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                    timeout=60,
                ) as http:
                    wait_for(
                        lambda: http.get(f"/api/v1/devices/{device}").json()["is_online"],
                        30,
                        what="online",
                    )
                    for _ in range(30):
                        begin = time.perf_counter()
                        http.post(
                            f"/api/v1/devices/{device}/exec", json={"command": ["true"]}
                        ).raise_for_status()
                        timings[label].append((time.perf_counter() - begin) * 1000)
            same, cross = median(timings["same replica"]), median(timings["cross replica"])
            report.add(
                "replicas",
                f"{count} replicas",
                "exec RTT p50 same / cross replica",
                f"{same:.1f} / {cross:.1f}",
                "ms",
                "",
                f"ratio {cross / same:.2f}x",
            )
    finally:
        for agent in agents:
            agent.stop()
        if sim is not None:
            sim.terminate()
            try:
                sim.wait(60)
            except subprocess.TimeoutExpired:
                sim.kill()
        for r in replicas:
            r.stop()
        nats.stop()
        postgres.drop_database(admin, name)


def run(report: Report, devices: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ef-bench-replicas-") as tmp, sim_state_root() as sims:
        for count in (1, 2, 3):
            run_tier(report, count, devices, Path(tmp), sims)
