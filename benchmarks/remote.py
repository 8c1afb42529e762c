"""Reaching devices (issue 4): proxy throughput and added latency, each as a
ratio to fetching the same service directly, and exec round trips.

The workload is a container on Podman, reached by the agent's ``docker``
runtime through Podman's Docker-compatible API (the only variant measured);
"direct" is the container's own address from the host. Latency is on a warm
client connection to the server (one httpx client), the proxy's admission
already remembered.

Wall times on a shared machine follow its load; the CPU the server and the
agent spent (user + system, from psutil) is reported beside them, per
proxied request and per download, with the load average."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.harness import Report, median, percentile
from tests.support.podman import IMAGE, containers, podman
from tests.support.procs import ADMIN_TOKEN, AgentProc, ServerProc, wait_for

SIZE_MB = 100


def _download(client: httpx.Client, url: str) -> tuple[float, int]:
    begin = time.perf_counter()
    size = 0
    with client.stream("GET", url) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes(256 * 1024):
            size += len(chunk)
    return time.perf_counter() - begin, size


class _Cpu:
    """CPU seconds (user + system) the server and the agent spent since the last read."""

    def __init__(self, *pids: int) -> None:
        self.processes = [psutil.Process(pid) for pid in pids]
        self.last = self._now()

    def _now(self) -> list[float]:
        return [sum(p.cpu_times()[:2]) for p in self.processes]

    def spent(self) -> list[float]:
        now = self._now()
        spent = [b - a for a, b in zip(self.last, now, strict=True)]
        self.last = now
        return spent


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _serving(client: httpx.Client, url: str) -> bool:
    """The container runs before its httpd listens (it writes big.bin first)."""
    try:
        return client.get(url).status_code == 200
    except httpx.TransportError:
        return False


def _latencies(client: httpx.Client, url: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        begin = time.perf_counter()
        client.get(url).raise_for_status()
        samples.append((time.perf_counter() - begin) * 1000)
    return samples


def run(report: Report, engine: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="ef-bench-remote-") as tmp:
        workdir = Path(tmp)
        server = ServerProc(workdir, heartbeat=10, extra_args=["--log-level", "warning"])
        server.start()
        agent: AgentProc | None = None
        try:
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=300) as http:
                key = http.post("/api/v1/provisioning-keys", json={}).json()["key"]
                agent = AgentProc(
                    workdir,
                    [server.url],
                    key=key,
                    name="bench",
                    runtime="docker",
                    env={"DOCKER_HOST": engine.url},
                    extra_args=["--log-level", "warning"],
                )
                agent.start()
                device = agent.wait_enrolled()
                spec = {
                    "services": {
                        "web": {
                            "image": IMAGE,
                            "command": [
                                "sh",
                                "-c",
                                f"dd if=/dev/zero of=/var/www/big.bin bs=1M count={SIZE_MB} 2>/dev/null; exec httpd -f -p 8080 -h /var/www",
                            ],
                            "init": True,
                            # the proxy reaches only declared ports (issue 14)
                            "expose": ["8080"],
                        }
                    }
                }
                http.post(
                    "/api/v1/applications", json={"name": "web", "version": "1", "spec": spec}
                )
                job = http.post(
                    "/api/v1/jobs", json={"application": "web", "devices": [device]}
                ).json()
                wait_for(
                    lambda: http.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "running",
                    120,
                    what="running",
                )
                web = next(c for c in containers(job["id"]))
                info = podman(
                    "inspect",
                    str(web["Id"]),
                    "--format",
                    "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                ).stdout.strip()
                direct = f"http://{info}:8080"
                proxied = f"/proxy/{job['id']}/{device}/web/8080"
                wait_for(lambda: _serving(http, f"{direct}/index.html"), 120, what="httpd")

                _download(http, f"{direct}/big.bin")  # warm caches
                direct_s, size = _download(http, f"{direct}/big.bin")
                assert server.process is not None and agent.process is not None
                cpu = _Cpu(server.process.pid, agent.process.pid)
                proxy_s, proxy_size = _download(http, f"{proxied}/big.bin")
                server_s, agent_s = cpu.spent()
                assert size == proxy_size == SIZE_MB * 1024 * 1024
                direct_mbps = size / direct_s / 1e6
                proxy_mbps = size / proxy_s / 1e6
                report.add("proxy", f"{SIZE_MB} MB download", "direct", direct_mbps, "MB/s")
                report.add(
                    "proxy", f"{SIZE_MB} MB download", "through the proxy", proxy_mbps, "MB/s"
                )
                report.add(
                    "proxy",
                    f"{SIZE_MB} MB download",
                    "ratio proxy/direct",
                    proxy_mbps / direct_mbps,
                    "",
                    "≥ 0.30",
                )
                report.add(
                    "proxy", f"{SIZE_MB} MB download", "CPU server / agent",
                    f"{server_s:.2f} / {agent_s:.2f}", "s",
                    note=f"wall {proxy_s:.2f} s; Podman, docker runtime; load {_load()}",
                )  # fmt: skip

                _latencies(http, f"{proxied}/index.html", 10)
                direct_ms = _latencies(http, f"{direct}/index.html", 200)
                cpu.spent()
                proxy_ms = _latencies(http, f"{proxied}/index.html", 200)
                server_s, agent_s = cpu.spent()
                report.add(
                    "proxy", "small GET", "CPU per proxied request, server / agent",
                    f"{server_s * 1000 / 200:.2f} / {agent_s * 1000 / 200:.2f}", "ms",
                    note=f"warm connection; Podman, docker runtime; load {_load()}",
                )  # fmt: skip
                for q in (50, 99):
                    d, p = percentile(direct_ms, q), percentile(proxy_ms, q)
                    report.add(
                        "proxy",
                        "small GET",
                        f"p{q} direct / proxied",
                        f"{d:.2f} / {p:.2f}",
                        "ms",
                        "added ≤ +3 ms" if q == 50 else "",
                        f"added {p - d:.2f} ms, ratio {p / d:.1f}x",
                    )

                rtts = []
                for _ in range(30):
                    begin = time.perf_counter()
                    http.post(
                        f"/api/v1/devices/{device}/exec", json={"command": ["true"]}
                    ).raise_for_status()
                    rtts.append((time.perf_counter() - begin) * 1000)
                report.add("exec", "device exec `true`", "round trip p50", median(rtts), "ms")
                report.add(
                    "exec", "device exec `true`", "round trip p99", percentile(rtts, 99), "ms"
                )
        finally:
            if agent is not None:
                agent.stop()
            server.stop()
            engine.cleanup()
