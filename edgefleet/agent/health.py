"""Healthchecks, run by the agent itself.

Engines disagree on healthchecks (Podman needs systemd timers to run them;
a process has none), so the agent runs each service's ``healthcheck.test``
through the runtime's exec ability, with Compose's meaning of ``interval``,
``timeout``, ``retries`` and ``start_period``: failures inside the start
period do not count, a success there makes it healthy at once, and
``retries`` consecutive failures after it make it unhealthy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.runtimes.base import Runtime
from edgefleet.agent.runtimes.capabilities import CanExec
from edgefleet.spec.model import HealthCheck
from edgefleet.wire.status import HealthState

log = logging.getLogger(__name__)


def test_argv(check: HealthCheck) -> list[str]:
    kind, *rest = check.test
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(rest)]
    return rest


@dataclass
class _Watch:
    check: HealthCheck
    state: HealthState = "starting"
    failures: int = 0
    last_output: str = ""
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class HealthTracker:
    def __init__(self) -> None:
        self._watches: dict[str, _Watch] = {}

    def watch(self, workload_id: str, runtime: Runtime, check: HealthCheck) -> None:
        if workload_id in self._watches:
            return
        if not isinstance(runtime, CanExec):
            return
        watch = _Watch(check)
        watch.task = asyncio.create_task(self._run(workload_id, runtime, watch))
        self._watches[workload_id] = watch

    def forget(self, workload_id: str) -> None:
        watch = self._watches.pop(workload_id, None)
        if watch is not None and watch.task is not None:
            watch.task.cancel()

    def watched(self) -> set[str]:
        return set(self._watches)

    def state(self, workload_id: str) -> HealthState | None:
        watch = self._watches.get(workload_id)
        return watch.state if watch else None

    def last_output(self, workload_id: str) -> str:
        watch = self._watches.get(workload_id)
        return watch.last_output if watch else ""

    async def stop(self) -> None:
        for workload_id in list(self._watches):
            self.forget(workload_id)

    async def _run(self, workload_id: str, runtime: CanExec, watch: _Watch) -> None:
        check = watch.check
        started = time.monotonic()
        argv = test_argv(check)
        await asyncio.sleep(min(check.interval, 1.0))
        while True:
            in_start = time.monotonic() - started < check.start_period
            ok = False
            try:
                code, out, err = await runtime.exec(workload_id, argv, {}, check.timeout)
                ok = code == 0
                watch.last_output = (out + err).decode(errors="replace").strip()[-200:]
                if not ok and not watch.last_output:
                    watch.last_output = f"exit code {code}"
            except TimeoutError:
                watch.last_output = f"timed out after {check.timeout:g} s"
            except (RuntimeFailure, OSError) as exc:  # the check's output, in the job's status
                watch.last_output = str(exc)[:200]
            if ok:
                watch.failures = 0
                watch.state = "healthy"
            elif not in_start:
                watch.failures += 1
                if watch.failures >= check.retries:
                    watch.state = "unhealthy"
            interval = min(check.interval, check.start_interval) if in_start else check.interval
            await asyncio.sleep(interval)
