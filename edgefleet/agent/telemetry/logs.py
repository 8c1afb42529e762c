"""Shipping the recent logs of every workload, so the server can show them
while the device is offline.

    every --logs-ship-interval s, for each service of each fleet job:
        runtime.logs(tail=--logs-ship-lines) --> trim to --logs-ship-bytes
            changed since last shipped? --WorkloadLogs(job, service, lines)--> server

A snapshot of the tail, not a stream of new lines: the server replaces what it
kept, so a message lost with the connection or sent twice changes nothing, and
what the server holds per service is bounded by construction. Only services
whose tail changed are sent; after a reconnect every tail is sent once more.
The owner's local apps (job ids ``local-…``) are not the fleet's and stay local.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable

from edgefleet.agent.errors import AgentError
from edgefleet.agent.jobs import Jobs
from edgefleet.tasks import cancel_all
from edgefleet.wire.local import LOCAL_APP_PREFIX
from edgefleet.wire.messages import Message, WorkloadLogs
from edgefleet.wire.telemetry import MAX_LINE_CHARS, MAX_LOG_LINES, LogLine

log = logging.getLogger(__name__)

Send = Callable[[Message], Awaitable[bool]]


def trim(lines: list[LogLine], max_lines: int, max_bytes: int) -> list[LogLine]:
    """The newest lines that fit both bounds, oldest first."""
    kept: list[LogLine] = []
    size = 0
    for line in reversed(lines[-max_lines:] if max_lines > 0 else []):
        size += len(line.text.encode()) + 1
        if size > max_bytes:
            break
        kept.append(line)
    kept.reverse()
    return kept


class LogShipper:
    def __init__(
        self, jobs: Jobs, send: Send, *, interval: float, max_lines: int, max_bytes: int
    ) -> None:
        self.jobs = jobs
        self.send = send
        self.interval = interval
        self.max_lines = min(max_lines, MAX_LOG_LINES)
        self.max_bytes = max_bytes
        self._shipped: dict[tuple[str, str], str] = {}  # (job, service) -> digest
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="log-shipper")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_all([self._task])

    async def on_connected(self) -> None:
        self._shipped.clear()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.ship()
            except (AgentError, OSError):
                log.exception("shipping workload logs failed")

    async def ship(self) -> int:
        """One pass; returns how many services' tails were sent."""
        sent = 0
        for job_id, assignment in self.jobs.assignments().items():
            if job_id.startswith(LOCAL_APP_PREFIX):
                continue
            for service in sorted(assignment.spec.services):
                lines = await self._tail(job_id, service)
                if lines is None:
                    continue
                digest = hashlib.sha256(
                    "\n".join(f"{ln.stream}:{ln.text}" for ln in lines).encode()
                ).hexdigest()
                if self._shipped.get((job_id, service)) == digest:
                    continue
                message = WorkloadLogs(job=job_id, service=service, lines=lines)
                if await self.send(message):
                    self._shipped[(job_id, service)] = digest
                    sent += 1
        return sent

    async def _tail(self, job_id: str, service: str) -> list[LogLine] | None:
        try:
            workload, runtime = await self.jobs.find_workload(job_id, service)
        except AgentError:
            return None  # not running here (yet): nothing new to say
        found: list[LogLine] = []
        async for line in runtime.logs(workload.id, tail=self.max_lines, since=None, follow=False):
            found.append(
                LogLine(
                    time=line.time.timestamp() if line.time else None,
                    stream=line.stream,
                    text=line.text[:MAX_LINE_CHARS],
                )
            )
        return trim(found, self.max_lines, self.max_bytes)
