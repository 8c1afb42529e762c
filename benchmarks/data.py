"""Collected data: how fast 100-byte records get in, and get to the server.

``run(report)`` is what ``make bench`` calls; it also returns the figures as
text lines (``python -m benchmarks.data`` prints them). Everything is real:
a real server and agent (process runtime), the agent's HTTP endpoint with
durability on (SQLite WAL, ``synchronous=FULL``: a 2xx only after fsync).

1. Accepted by the local endpoint, records/s: clients POSTing one record per
   request, each client one keep-alive HTTP/1.1 connection sending its next
   request as soon as the answer came (many clients: group commit at work),
   and JSON lines of 100 records per request. Every 2xx means fdatasync'd on
   the device (the agent's journal). Single-record rows use ``wrk`` (C, one
   thread, epoll; ``make bench`` installs it) when it is there, else the lean
   Python client (:func:`_load`); the row names the client, because the
   client shares the agent's two cores and its CPU is not the endpoint's.
   The uploader runs alongside, as in life. Each row notes records per
   fsync, the agent's CPU per record (all its threads, the uploader's share
   included), the server's meanwhile (its ingest of what the uploader ships,
   on the same two cores: it runs alongside, not after) and the client's
   beside the load average, and is checked for
   exactly once: every 2xx'd record is in the agent's buffer once (its
   stream's accepted count is the 2xx count, plus at most one record per
   connection whose answer the client stopped reading at the end), and the
   server ends with exactly the records the agent accepted, stream by stream.
2. Uploaded end to end, records/s: records buffered while the server is down,
   then the time until the server has committed all of them (the upload path
   alone); and posting while connected, first POST to last record committed.
3. The agent's RSS, idle, with the endpoint up.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

from benchmarks import wrk
from benchmarks.harness import Report
from tests.support.procs import ADMIN_TOKEN, AgentProc, ServerProc, wait_for

RECORD_BYTES = 100


def record(n: int) -> bytes:
    head = json.dumps({"n": n, "pad": ""}, separators=(",", ":"))
    return json.dumps(
        {"n": n, "pad": "x" * (RECORD_BYTES - len(head))}, separators=(",", ":")
    ).encode()


def _requests(target: str, bodies: list[bytes]) -> list[bytes]:
    """Each body as the whole bytes of one POST, built before the clock starts."""
    return [
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (target.encode(), len(body), body)
        for body in bodies
    ]


def _answered(buffer: bytes) -> int:
    """The length of the complete response at the start of ``buffer`` (0: not
    all here yet); raises unless it is a 2xx."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return 0
    head = buffer[:end].lower()
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")
    total = end + 4 + int(head[at + 17 :].split(b"\r\n", 1)[0])
    if len(buffer) < total:
        return 0
    if buffer[9:10] != b"2":
        raise RuntimeError(f"endpoint answered {buffer[:total][:300]!r}")
    return total


def _load(
    url: str, clients: int, requests: int, per_request: int, stream: str = "bench"
) -> tuple[float, float]:
    """Records/s over ``clients`` keep-alive connections sending ``requests``
    POSTs each, and the CPU seconds the clients spent.

    The clients are lean, as ``wrk`` is: one thread, epoll over raw sockets,
    requests built beforehand; each connection sends its next POST only once
    the last was answered (sequential per client, never pipelined) and every
    answer is checked to be a 2xx. A Python HTTP client would spend more CPU
    per request than the endpoint, on the same two cores, and so measure itself.
    """
    parts = urlsplit(url)
    target = f"{parts.path}?stream={stream}"
    n = 0

    def body() -> bytes:
        nonlocal n
        n += per_request
        return b"\n".join(record(i) for i in range(n - per_request, n))

    plans = [_requests(target, [body() for _ in range(requests)]) for _ in range(clients)]
    poll = select.epoll()
    sockets: dict[int, socket.socket] = {}
    sent: dict[int, int] = {}
    pending: dict[int, bytes] = {}
    plan_of: dict[int, list[bytes]] = {}
    try:
        for plan in plans:
            sock = socket.create_connection((parts.hostname, parts.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            fd = sock.fileno()
            sockets[fd], sent[fd], pending[fd], plan_of[fd] = sock, 0, b"", plan
            poll.register(fd, select.EPOLLIN)
        cpu, begin = time.process_time(), time.perf_counter()
        for fd, sock in sockets.items():
            sock.sendall(plan_of[fd][0])
        answered, live = 0, len(sockets)
        while live:
            for fd, _ in poll.poll():
                sock = sockets[fd]
                data = sock.recv(65536)
                if not data:
                    raise RuntimeError("the endpoint closed a connection")
                pending[fd] += data
                while size := _answered(pending[fd]):
                    pending[fd] = pending[fd][size:]
                    answered += 1
                    sent[fd] += 1
                    if sent[fd] < len(plan_of[fd]):
                        sock.sendall(plan_of[fd][sent[fd]])
                    else:
                        poll.unregister(fd)
                        live -= 1
                        break
        seconds = time.perf_counter() - begin
        cpu = time.process_time() - cpu
    finally:
        poll.close()
        for sock in sockets.values():
            sock.close()
    return answered * per_request / seconds, cpu


class _Syncs:
    """fsync/fdatasync calls of a process while the block runs (``perf stat`` on
    the syscall tracepoints, when perf is there and allowed; else nothing)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.count: int | None = None
        self._perf: subprocess.Popen[str] | None = None

    def __enter__(self) -> _Syncs:
        if shutil.which("perf"):
            events = "syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync"
            argv = ["perf", "stat", "-x,", "-e", events, "-p", str(self.pid)]
            self._perf = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
            time.sleep(0.3)  # attached before the load starts
        return self

    def __exit__(self, *exc: object) -> None:
        if self._perf is None:
            return
        self._perf.send_signal(signal.SIGINT)
        _, err = self._perf.communicate(timeout=10)
        counts = [line.split(",")[0] for line in err.splitlines()]
        if counts and all(c.isdigit() for c in counts):
            self.count = sum(int(c) for c in counts)

    def note(self, records: int, seconds: float) -> str:
        if not self.count:
            return ""
        return (
            f"; {self.count / seconds:,.0f} fsyncs/s, {records / self.count:.1f} records per fsync"
        )


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class Load:
    """One load on the endpoint, timed with what the agent spent meanwhile:
    its fsyncs, and its CPU (every thread: endpoint, group commit, uploader)
    per record, beside the server's (ingesting what the uploader ships
    meanwhile, on the same two cores), the client's and the machine's load."""

    def __init__(self, pid: int, url: str, workdir: Path, server: int | None = None) -> None:
        self.agent = psutil.Process(pid)
        self.server = psutil.Process(server) if server is not None else None
        self.url = url
        self.workdir = workdir
        self.answered: dict[str, int] = {}  # stream -> records 2xx'd
        self.slack: dict[str, int] = {}  # stream -> requests wrk may have left unread

    def run(
        self, stream: str, clients: int, requests: int, per: int, seconds: float
    ) -> tuple[float, str]:
        """Records/s and the row's note: wrk for ``seconds`` when there and
        ``per`` is 1, else :func:`_load` (``requests`` per client)."""
        use_wrk = per == 1 and wrk.available()
        with _Syncs(self.agent.pid) as syncs:
            cpu = _cpu(self.agent)
            server_cpu = _cpu(self.server) if self.server is not None else 0.0
            begin = time.perf_counter()
            if use_wrk:
                result = wrk.post(
                    f"{self.url}?stream={stream}", record(0), clients, seconds, self.workdir
                )
                records, rate, client = result.answered, result.rate, result.cpu
                self.slack[stream] = self.slack.get(stream, 0) + clients
            else:
                rate, client = _load(self.url, clients, requests, per, stream)
                records = clients * requests * per
            elapsed = time.perf_counter() - begin
            cpu = _cpu(self.agent) - cpu
            if self.server is not None:
                server_cpu = _cpu(self.server) - server_cpu
        self.answered[stream] = self.answered.get(stream, 0) + records
        load = os.getloadavg()[0]
        note = (
            f"; client: {'wrk' if use_wrk else 'lean Python'}"
            f"{syncs.note(records, elapsed)}; agent CPU {cpu / records * 1e6:,.0f} us/record, "
            + (
                f"server CPU meanwhile {server_cpu / records * 1e6:,.0f} us/record, "
                if self.server is not None
                else ""
            )
            + f"client's CPU {client / records * 1e6:,.0f} us/record, load {load:.1f}"
        )
        return rate, note

    def accepted(self) -> dict[str, int]:
        """Records the agent stored per stream (its backlog's ``accepted``),
        checked against the 2xx answers: each answered record stored once."""
        streams = httpx.get(self.url, timeout=60).json()["streams"]
        accepted = {s["stream"]: int(s["accepted"]) for s in streams}
        for stream, answered in self.answered.items():
            stored = accepted.get(stream, 0)
            if not answered <= stored <= answered + self.slack.get(stream, 0):
                raise RuntimeError(
                    f"stream {stream}: {answered} records answered 2xx, {stored} stored "
                    f"(at most {self.slack.get(stream, 0)} unread answers allowed)"
                )
        return accepted


def _server_has(http: httpx.Client, job: str, accepted: dict[str, int]) -> bool:
    """Whether the server holds what the agent accepted, stream by stream;
    raises if it holds more (a record stored twice)."""
    held = {i["stream"]: int(i["records"]) for i in _summary(http, job)["items"]}
    for stream, count in accepted.items():
        if held.get(stream, 0) > count:
            raise RuntimeError(f"stream {stream}: the server holds {held[stream]} of {count}")
    return all(held.get(stream, 0) == count for stream, count in accepted.items())


def _stop_workload(pid_file: Path) -> None:
    """A process-runtime workload keeps running when its agent stops (by design):
    end the benchmark's own, by the pid it wrote."""
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):  # never ran
        os.kill(int(pid_file.read_text()), signal.SIGTERM)


def _summary(http: httpx.Client, job: str) -> dict[str, Any]:
    result: dict[str, Any] = http.get(f"/api/v1/jobs/{job}/data/summary").json()
    return result


def run(report: Report | None = None, quick: bool = False) -> list[str]:
    lines: list[str] = []

    def add(name: str, value: float, unit: str, note: str = "", target: float = 0) -> None:
        if target and value < target:
            note = (note + "; " if note else "") + "MISSES its target"
        lines.append(f"data: {name}: {value:,.0f} {unit}" + (f" ({note})" if note else ""))
        print(lines[-1], flush=True)
        if report is not None:
            wanted = f">= {target:,.0f} {unit}" if target else ""
            report.add("data", "1 agent", name, value, unit, wanted, note)

    scale = 0.2 if quick else 1.0
    with tempfile.TemporaryDirectory(prefix="ef-bench-data-") as tmp:
        workdir = Path(tmp)
        server = ServerProc(workdir, heartbeat=2, extra_args=["--log-level", "warning"])
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
                    extra_args=["--log-level", "warning", "--data-quota-mb", "2048"],
                )
                agent.start()
                device = agent.wait_enrolled()
                out = workdir / "url"
                pid_file = workdir / "workload.pid"  # ended at the end: it outlives the agent
                spec = {
                    "services": {
                        "w": {
                            "x-edgefleet-runtime": "process",
                            "command": [
                                "sh",
                                "-c",
                                f'echo "$$EDGEFLEET_DATA_URL" > {out}; echo $$$$ > {pid_file}; '
                                "exec sleep 100000",
                            ],
                        }
                    }
                }
                http.post("/api/v1/applications", json={"name": "w", "version": "1", "spec": spec})
                job = http.post("/api/v1/jobs", json={"application": "w", "devices": [device]})
                job_id = job.json()["id"]
                wait_for(out.exists, 60, what="workload")
                url = out.read_text().strip()
                time.sleep(3)
                assert agent.process is not None
                rss = psutil.Process(agent.process.pid).memory_info().rss / 2**20
                add("agent RSS, idle, data endpoint up", rss, "MiB")

                # 1. The local endpoint alone (uploads run alongside, as in life).
                assert server.process is not None
                load = Load(agent.process.pid, url, workdir, server.process.pid)
                singles, note = load.run("one-32", 32, int(200 * scale), 1, 10 * scale)
                add(
                    "endpoint, 1 record/POST, 32 clients",
                    singles,
                    "records/s",
                    "durable (fdatasync before each 2xx); 32 keep-alive connections, back to "
                    "back; group commit: one fsync for all waiting" + note,
                    20_000,
                )
                one, note = load.run("one-1", 1, int(500 * scale), 1, 10 * scale)
                add(
                    "endpoint, 1 record/POST, 1 client",
                    one,
                    "records/s",
                    "durable (fdatasync before each 2xx); 1 keep-alive connection, back to back: "
                    "one fsync per answer, nothing to group with" + note,
                    4_000,
                )
                lines_rate, note = load.run("lines", 4, int(100 * scale), 100, 0)
                add(
                    "endpoint, 100 records/POST, 4 clients",
                    lines_rate,
                    "records/s",
                    "durable (fdatasync before each 2xx); 4 keep-alive connections, JSON lines"
                    + note,
                )
                accepted = load.accepted()  # each 2xx'd record stored once on the agent
                sent = sum(accepted.values())
                wait_for(lambda: _server_has(http, job_id, accepted), 300, what="first drain")

                # 2a. Upload alone: buffered while the server is away, then drained.
                server.stop()
                batch = int(100_000 * scale)
                _load(url, 4, batch // 400, 100)
                begin = time.perf_counter()
                server.start()
                wait_for(
                    lambda: _summary(http, job_id)["records"] >= sent + batch,
                    600,
                    interval=0.1,
                    what="drained",
                )
                drain = batch / (time.perf_counter() - begin)
                add(
                    "upload of a backlog, server restart to all committed",
                    drain,
                    "records/s",
                    f"{batch:,} records; includes the server's start and the agent's reconnect",
                )

                # 2b. End to end while connected.
                total = sent + batch
                more = int(50_000 * scale)
                begin = time.perf_counter()
                _load(url, 4, more // 400, 100)
                wait_for(
                    lambda: _summary(http, job_id)["records"] >= total + more,
                    600,
                    interval=0.05,
                    what="end to end",
                )
                add(
                    "end to end, POST to committed on the server",
                    more / (time.perf_counter() - begin),
                    "records/s",
                    f"{more:,} records, 100 per POST",
                )
        finally:
            if agent is not None:
                agent.stop()
            _stop_workload(workdir / "workload.pid")
            server.stop()
    return lines


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
