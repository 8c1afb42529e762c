"""``wrk`` (Debian's package, C, epoll) as a load generator for POSTs.

A Python client spends as much CPU per request as the endpoint it measures,
on the same two cores, so it measures itself; wrk spends a few microseconds.
``make bench`` installs it (scripts/install-bench-deps.sh); without it the
benchmarks fall back to their lean Python client and say so.

wrk runs for a duration, keeps each connection's requests back to back
(one in flight per connection, never pipelined), and counts the answers it
read; the Lua script below prints them with the non-2xx/3xx answers and
socket errors, so a caller can check every answer was a 2xx. At the end of
the duration wrk stops reading: up to one request per connection may have
been served without being counted.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = """\
wrk.method = "POST"
wrk.body = %s
wrk.headers["Content-Type"] = "application/json"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk-counts %%d %%d %%d %%d\\n", summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout, summary.duration))
end
"""


@dataclass(frozen=True)
class Result:
    answered: int  # answers read, every one a 2xx (else post() raised)
    seconds: float  # wrk's own measure of its run
    cpu: float  # wrk's CPU seconds (user + system)

    @property
    def rate(self) -> float:
        return self.answered / self.seconds


def available() -> bool:
    return shutil.which("wrk") is not None


def post(url: str, body: bytes, clients: int, seconds: float, workdir: Path) -> Result:
    """``clients`` keep-alive connections POSTing ``body`` to ``url`` back to
    back for ``seconds``, from one wrk thread; raises unless every answer
    was a 2xx and no connection failed."""
    script = workdir / "wrk-post.lua"
    script.write_text(SCRIPT % json.dumps(body.decode()))  # a JSON string is a Lua string here
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "30s"]
    done = subprocess.run(
        [*argv, "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    counts = [
        line.split()[1:] for line in done.stdout.splitlines() if line.startswith("wrk-counts")
    ]
    if not counts:
        raise RuntimeError(f"wrk printed no counts: {done.stdout[-500:]!r} {done.stderr[-500:]!r}")
    answered, refused, failed, micros = (int(n) for n in counts[0])
    if refused or failed:
        raise RuntimeError(f"wrk: {refused} answers not 2xx/3xx, {failed} socket errors")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Result(answered, micros / 1e6, cpu)
