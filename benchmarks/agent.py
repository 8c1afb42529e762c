"""One real agent: its idle footprint, and how fast a single deploy is
reported running (process runtime, and Podman with a local image)."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.harness import Report, median, percentile
from tests.support.procs import AgentProc, ServerProc, wait_for
from tests.support.tls import TLSServerProc, hashed_store


def _deploys(http: httpx.Client, app: str, device: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        begin = time.perf_counter()
        job = http.post("/api/v1/jobs", json={"application": app, "devices": [device]}).json()

        def running(job_id: str = job["id"]) -> bool:
            answer = http.get(f"/api/v1/jobs/{job_id}", params={"devices": "false"}).json()
            return bool(answer["state"] == "running")

        wait_for(running, 60, interval=0.01, what="running")
        times.append((time.perf_counter() - begin) * 1000)
        http.post(f"/api/v1/jobs/{job['id']}/cancel")
        time.sleep(0.5)
    return times


def _idle_footprint(report: Report, agent: AgentProc, runtime: str) -> None:
    """RSS, PSS, USS and CPU of a connected agent with no job, after it settled."""
    time.sleep(5)
    process = psutil.Process(agent.process.pid)  # type: ignore[union-attr]
    process.cpu_percent(None)
    time.sleep(30)
    cpu = process.cpu_percent(None)
    memory = process.memory_full_info()
    what = f"1 idle agent, {runtime}"
    note = "10 s heartbeat; RSS counts shared libraries whole"
    report.add("agent footprint", what, "RSS", memory.rss / 1e6, "MB", "<= 40 MB", note)
    report.add(
        "agent footprint",
        what,
        "PSS (shared pages split among their users)",
        memory.pss / 1e6,
        "MB",
    )
    report.add("agent footprint", what, "USS (its own pages)", memory.uss / 1e6, "MB")
    report.add("agent footprint", what, "CPU over 30 s", cpu, "% of one core")


def _installed_env(cache: Path) -> dict[str, str]:
    """The environment of an installed agent: bytecode written once, then read."""
    return {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(cache)}


@contextmanager
def _system_store(directory: Path) -> Iterator[dict[str, str]]:
    """The environment of a device whose agent has no ``--ca-file`` (a server
    with a public CA): OpenSSL's defaults, no ``SSL_CERT_FILE``, the CA directory
    ``directory`` in place of /etc/ssl/certs. ``SSL_CERT_FILE`` is left out of
    this process's environment while the agent's is copied from it."""
    saved = os.environ.pop("SSL_CERT_FILE", None)
    try:
        yield {"SSL_CERT_DIR": str(directory)}
    finally:
        if saved is not None:
            os.environ["SSL_CERT_FILE"] = saved


@contextmanager
def _one_agent(
    workdir: Path,
    name: str,
    runtime: str,
    restarted: bool,
    tls: bool = False,
    system_store: bool = False,
    **agent_args: Any,
) -> Iterator[tuple[httpx.Client, AgentProc, str]]:
    """A server and one enrolled agent (the admin's HTTP client, the agent, its
    device id), both stopped at the end. ``restarted``: measured as a device
    runs day to day, restarted with its stored credential, not in the run that
    enrolled it. ``tls``: an https server (self-signed, given to the agent as
    ``--ca-file``), so the agent loads ssl; with ``system_store``, trusted as a
    public CA is instead, through the system's hashed CA directory.

    The agent compiles its modules once into a bytecode cache of its own (as
    ``pip install`` does on a device) even when this checkout's environment
    says ``PYTHONDONTWRITEBYTECODE``: an agent that compiles every module from
    source at each start keeps ~0.6 MB more, which no installed device does."""
    server_args: dict[str, Any] = dict(heartbeat=10, name=f"server-{name}")
    server_args["extra_args"] = ["--log-level", "warning"]
    server = TLSServerProc(workdir, **server_args) if tls else ServerProc(workdir, **server_args)
    server.start()
    agent: AgentProc | None = None
    extra = ["--log-level", "warning"]
    store: contextlib.AbstractContextManager[dict[str, str]] = contextlib.nullcontext({})
    if isinstance(server, TLSServerProc) and system_store:
        store = _system_store(hashed_store(workdir / f"{name}-certs", server.cert))
    elif isinstance(server, TLSServerProc):
        extra += ["--ca-file", str(server.cert)]
    try:
        with server.http() as http, store as trust:
            http.timeout = httpx.Timeout(60)
            key = http.post("/api/v1/provisioning-keys", json={}).json()["key"]
            env = {**_installed_env(workdir / f"pycache-{name}"), **agent_args.pop("env", {})}
            agent = AgentProc(
                workdir, [server.url], key=key, name=name, runtime=runtime,
                extra_args=extra, env={**env, **trust}, **agent_args,
            )  # fmt: skip
            agent.start()
            device = agent.wait_enrolled()
            if restarted:
                # Settled first (its data endpoint's secret stored), as a device that
                # has run before: else the restarted agent makes that secret, which
                # loads hashing (libcrypto, ~3.4 MB) only a first start needs.
                secret = agent.state_dir / "data" / "secret"
                wait_for(secret.exists, 30, what="the agent settled")
                agent.stop()
                agent.start()
                wait_for(
                    lambda: http.get(f"/api/v1/devices/{device}").json()["is_online"],
                    30,
                    what="online",
                )
            yield http, agent, device
    finally:
        if agent is not None:
            agent.stop()
        server.stop()


def run(report: Report, podman: Any | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="ef-bench-agent-") as tmp:
        workdir = Path(tmp)
        with _one_agent(workdir, "tls", "process", restarted=True, tls=True) as (_, agent, _):
            _idle_footprint(report, agent, "process runtime, https server")
        system = dict(restarted=True, tls=True, system_store=True)
        with _one_agent(workdir, "tls-system", "process", **system) as (_, agent, _):
            _idle_footprint(report, agent, "process runtime, https server, system CA store")
        with _one_agent(workdir, "bench", "process", restarted=True) as (http, agent, device):
            _idle_footprint(report, agent, "process runtime")
            spec = {
                "services": {
                    "tick": {"x-edgefleet-runtime": "process", "command": ["sleep", "3600"]}
                }
            }
            http.post("/api/v1/applications", json={"name": "one", "version": "1", "spec": spec})
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
        if podman is not None:
            _podman_deploys(report, workdir, podman)


def _podman_deploys(report: Report, workdir: Path, engine: Any) -> None:
    from tests.support.podman import IMAGE

    docker = {"DOCKER_HOST": engine.url}
    try:
        with _one_agent(workdir, "podman", "docker", restarted=True, env=docker) as (
            http,
            agent,
            device,
        ):
            _idle_footprint(report, agent, "docker runtime (Podman)")
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
        engine.cleanup()


# -- soak: memory over a long run with a job running and data flowing (issue 18) --------------

WRITER = """
import json, os, sys, time, urllib.request
with open(sys.argv[1], "w") as pid_file:
    pid_file.write(str(os.getpid()))
url = os.environ["EDGEFLEET_DATA_URL"]
url += ("&" if "?" in url else "?") + "stream=soak"
n = 0
while True:
    body = json.dumps({"n": n, "value": n * 0.5}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=10).read()
        n += 1
    except OSError:
        pass
    time.sleep(0.1)
"""


def _slope_mb_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares growth of RSS (MB) per hour over (seconds, MB) samples."""
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples) or 1.0
    cov = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    return cov / var * 3600


def soak(report: Report, seconds: float) -> None:
    """One agent (process runtime) running a workload that posts 10 records/s to its
    data endpoint for ``seconds``; RSS sampled every 10 s after a 60 s warm-up."""
    with tempfile.TemporaryDirectory(prefix="ef-bench-soak-") as tmp:
        pid_file = Path(tmp) / "writer.pid"  # the workload outlives its agent (by design)
        try:
            samples, stored = _soak_run(Path(tmp), pid_file, seconds)
        finally:
            _stop_writer(pid_file)
    what = f"{seconds / 60:g}-min soak, job running, ~10 records/s"
    first, last = samples[0][1], samples[-1][1]
    report.add("agent soak", what, "RSS after warm-up", first, "MB", "<= 40 MB")
    report.add("agent soak", what, "RSS at the end", last, "MB", "<= 40 MB")
    report.add("agent soak", what, "RSS max", max(m for _, m in samples), "MB")
    report.add(
        "agent soak", what, "RSS growth (least squares)", _slope_mb_per_hour(samples), "MB/hour",
        "flat", f"{len(samples)} samples; {stored} records stored on the server",
    )  # fmt: skip


def _soak_run(
    workdir: Path, pid_file: Path, seconds: float
) -> tuple[list[tuple[float, float]], int]:
    """(seconds, RSS MB) samples of the agent, and the records the server stored."""
    with _one_agent(workdir, "soak", "process", restarted=False) as (http, agent, device):
        command = ["/usr/bin/python3", "-c", WRITER, str(pid_file)]
        spec = {"services": {"writer": {"x-edgefleet-runtime": "process", "command": command}}}
        http.post("/api/v1/applications", json={"name": "soak", "version": "1", "spec": spec})
        job = http.post("/api/v1/jobs", json={"application": "soak", "devices": [device]})
        job_id = job.json()["id"]
        process = psutil.Process(agent.process.pid)  # type: ignore[union-attr]
        time.sleep(60)  # warm-up: imports, first deploy, first uploads
        samples: list[tuple[float, float]] = []
        begin = time.monotonic()
        while time.monotonic() - begin < seconds:
            samples.append((time.monotonic() - begin, process.memory_info().rss / 1e6))
            time.sleep(10)
        samples.append((time.monotonic() - begin, process.memory_info().rss / 1e6))
        summary = http.get(f"/api/v1/jobs/{job_id}/data/summary").json()
    return samples, int(summary.get("records", 0))


def _stop_writer(pid_file: Path) -> None:
    """End the soak's workload by the pid it wrote (a process-runtime workload
    keeps running when its agent stops, by design)."""
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):  # never ran
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
