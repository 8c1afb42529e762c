"""One change at a time per job, several jobs at once; failed revisions retried with backoff.

    want(job) --> [pending, FIFO, one entry per job] --take()--> [running] --done()--> idle
                          ^                                         |
                          '------- want(job) while running ---------'  (runs again after)

A job's changes never overlap (a second ``want`` while it runs queues it
again), but different jobs do not wait for each other, up to ``limit`` at
once: a five-minute image pull or a deploy's settle window for one job must
not hold up another job's deploy or removal on the same device.

Pure bookkeeping: the :class:`~edgefleet.agent.jobs.Jobs` workers await
:meth:`ChangeQueue.wait` and do the I/O.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

PARALLEL_JOBS = 4


class ChangeQueue:
    def __init__(self, limit: int = PARALLEL_JOBS) -> None:
        self.limit = max(1, limit)
        self._pending: OrderedDict[str, None] = OrderedDict()
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._ready = asyncio.Event()

    def want(self, job_id: str) -> None:
        if job_id in self._running:
            self._again.add(job_id)
            return
        self._pending.setdefault(job_id, None)
        self._ready.set()

    def take(self) -> str | None:
        if len(self._running) >= self.limit or not self._pending:
            return None
        job_id, _ = self._pending.popitem(last=False)
        self._running.add(job_id)
        return job_id

    def done(self, job_id: str) -> None:
        self._running.discard(job_id)
        if job_id in self._again:
            self._again.discard(job_id)
            self._pending.setdefault(job_id, None)
        if self._pending:
            self._ready.set()

    async def wait(self) -> str:
        while True:
            job_id = self.take()
            if job_id is not None:
                return job_id
            self._ready.clear()
            await self._ready.wait()

    @property
    def idle(self) -> bool:
        return not self._running and not self._pending

    @property
    def running(self) -> frozenset[str]:
        return frozenset(self._running)

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._pending or job_id in self._running


@dataclass
class Failure:
    error: str
    attempts: int
    retry_at: float


class RetryBook:
    """Remembers revisions that failed, so a crash-looping v3 is not retried in
    a hot loop while v2 serves: 30 s, 1 min, 2 min ... up to 30 min."""

    def __init__(self, base: float = 30.0, cap: float = 1800.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[tuple[str, str], Failure] = {}

    def failed(self, job_id: str, revision: str, error: str, now: float) -> Failure:
        previous = self._failures.get((job_id, revision))
        attempts = previous.attempts + 1 if previous else 1
        delay = min(self.cap, self.base * 2 ** (attempts - 1))
        failure = Failure(error, attempts, now + delay)
        self._failures[(job_id, revision)] = failure
        return failure

    def blocked(self, job_id: str, revision: str, now: float) -> Failure | None:
        failure = self._failures.get((job_id, revision))
        if failure is not None and now < failure.retry_at:
            return failure
        return None

    def get(self, job_id: str, revision: str) -> Failure | None:
        return self._failures.get((job_id, revision))

    def succeeded(self, job_id: str, revision: str) -> None:
        self._failures.pop((job_id, revision), None)

    def forget_job(self, job_id: str) -> None:
        for key in [k for k in self._failures if k[0] == job_id]:
            del self._failures[key]

    def due(self, now: float) -> list[str]:
        return sorted({job for (job, _), f in self._failures.items() if f.retry_at <= now})
