"""The ``sim`` runtime: workloads that start at once, for the fleet simulator
and tests. A real agent never offers it: the simulator builds it directly.

No engine, no processes: a workload is a record that goes created ->
running when started (or exited, if its command is ``["false"]``, so
failures can be simulated too). It exercises every code path of the agent
above the runtime, which is what the simulator measures.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.runtimes.workload import (
    LABEL_INPUTS,
    LABEL_JOB,
    LogLine,
    Workload,
    WorkloadSpec,
)
from edgefleet.spec.policy import DevicePolicy

_ids = itertools.count(1)


class SimRuntime:
    name = "sim"

    def __init__(self) -> None:
        self._workloads: dict[str, Workload] = {}
        self._specs: dict[str, WorkloadSpec] = {}
        self._networks: dict[str, str] = {}  # name -> job id
        self._volumes: dict[str, str] = {}  # name -> job id
        self.device_id = ""
        self.policy = DevicePolicy()  # set by RuntimeSet.set_policy; nothing runs for real

    async def ping(self) -> bool:
        return True

    async def workloads(self, job_id: str | None = None) -> list[Workload]:
        return [w for w in self._workloads.values() if job_id is None or w.job_id == job_id]

    async def prepare(self, spec: WorkloadSpec, auth: dict[str, dict[str, str]]) -> None:
        if spec.service.image and spec.service.image.startswith("missing/"):
            raise RuntimeFailure(f"cannot pull image {spec.service.image}: not found")

    async def ensure_network(self, name: str, job_id: str, internal: bool = False) -> None:
        self._networks[name] = job_id

    async def remove_network(self, name: str) -> None:
        self._networks.pop(name, None)

    async def list_networks(self, job_id: str) -> list[str]:
        return sorted(n for n, j in self._networks.items() if j == job_id)

    async def ensure_volume(self, name: str, job_id: str) -> None:
        self._volumes[name] = job_id

    async def remove_volumes(self, job_id: str) -> None:
        self._volumes = {n: j for n, j in self._volumes.items() if j != job_id}

    async def create(self, spec: WorkloadSpec) -> str:
        for workload in self._workloads.values():
            if workload.name == spec.name:
                return workload.id
        workload_id = f"sim{next(_ids)}"
        self._workloads[workload_id] = Workload(
            id=workload_id,
            name=spec.name,
            job_id=spec.labels[LABEL_JOB],
            service=spec.service_name,
            revision=spec.revision,
            version=spec.version,
            state="created",
            image=spec.service.image,
            inputs=spec.labels.get(LABEL_INPUTS, ""),
        )
        self._specs[workload_id] = spec
        return workload_id

    async def start(self, workload_id: str) -> None:
        workload = self._workloads[workload_id]
        spec = self._specs[workload_id]
        workload.started_at = datetime.now(UTC)
        if (spec.service.command or [])[:1] == ["false"]:
            workload.state, workload.exit_code = "exited", 1
        else:
            workload.state, workload.exit_code = "running", None

    async def stop(self, workload_id: str, timeout: float) -> None:
        workload = self._workloads.get(workload_id)
        if workload is not None and workload.state == "running":
            workload.state, workload.exit_code = "exited", 0

    async def remove(self, workload_id: str) -> None:
        self._workloads.pop(workload_id, None)
        self._specs.pop(workload_id, None)

    async def logs(
        self, workload_id: str, *, tail: int | None, since: datetime | None, follow: bool
    ) -> AsyncIterator[LogLine]:
        workload = self._workloads.get(workload_id)
        if workload is not None:
            yield LogLine(
                stream="stdout", time=workload.started_at, text=f"{workload.name} started"
            )

    async def exec(
        self, workload_id: str, argv: list[str], env: dict[str, str], timeout: float
    ) -> tuple[int, bytes, bytes]:
        return 0, b"", b""
