"""What a workload is, as the agent and every runtime see it.

A *workload* is one service of one job at one revision: a container, or a
supervised process. Every workload carries labels (job, device, service,
revision) so the agent can always rebuild its view from the engine alone:
after an agent restart, a manual ``podman rm`` or a crash mid-change,
:meth:`~edgefleet.agent.runtimes.base.Runtime.workloads` is the truth and
reconcile works from it. The names of engine objects (workloads, networks,
volumes) are made here too, so that every runtime and the planner agree.

Plain data only: the runtime contract (:mod:`.base`) and the optional
abilities (:mod:`.capabilities`) both build on it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from edgefleet.spec.model import Service

LABEL_MANAGED = "io.edgefleet.managed"
LABEL_JOB = "io.edgefleet.job"
LABEL_DEVICE = "io.edgefleet.device"
LABEL_SERVICE = "io.edgefleet.service"
LABEL_REVISION = "io.edgefleet.revision"
LABEL_VERSION = "io.edgefleet.version"
LABEL_INPUTS = "io.edgefleet.inputs"

WorkloadState = Literal["created", "running", "restarting", "exited", "dead", "paused", "missing"]


def inputs_digest(service: Service) -> str:
    """Short hash of a service's inputs: its environment and what its secret and
    config files hold (secret versions, config contents); ``""`` for a service
    with none. They are not part of the job's revision: a changed variable or a
    rotated secret replaces only the workloads of the services it reaches
    (:func:`edgefleet.agent.changes.plan.plan_job`)."""
    if not service.secrets and not service.configs and not service.environment:
        return ""
    refs: list[object] = [sorted(service.environment.items())]
    refs += [[r.source, r.target, r.mode, r.version] for r in service.secrets]
    refs += [[r.source, r.target, r.mode, r.content] for r in service.configs]
    return hashlib.sha256(json.dumps(refs).encode()).hexdigest()[:10]


def deliverable(service: Service) -> bool:
    """Every secret and config the service uses has a value the server sent
    (a deleted secret has none: the workloads that have it keep it)."""
    return all(r.version is not None for r in service.secrets) and all(
        r.content is not None for r in service.configs
    )


@dataclass(frozen=True)
class WorkloadFile:
    """A secret or config already written by the agent to a file on a tmpfs
    (:mod:`edgefleet.agent.workload_files`), for the runtime to mount read-only
    at ``target`` inside the workload."""

    host_path: Path
    target: str


@dataclass
class WorkloadSpec:
    """Everything a runtime needs to create one workload; built by the agent's
    planner from a :class:`~edgefleet.wire.workload.JobAssignment`."""

    job_id: str
    device_id: str
    revision: str
    version: str
    service_name: str
    service: Service
    environment: dict[str, str]
    networks: dict[str, list[str]] = field(default_factory=dict)  # runtime network -> aliases
    volumes: dict[str, str] = field(default_factory=dict)  # spec volume name -> runtime volume
    files: list[WorkloadFile] = field(default_factory=list)  # secrets and configs
    lock_dir: Path | None = None  # the job's update-lock directory (agent/changes/locks.py)

    @property
    def name(self) -> str:
        return workload_name(
            self.job_id,
            self.device_id,
            self.revision,
            self.service_name,
            inputs_digest(self.service),
        )

    @property
    def labels(self) -> dict[str, str]:
        return {
            **self.service.labels,
            LABEL_MANAGED: "true",
            LABEL_JOB: self.job_id,
            LABEL_DEVICE: self.device_id,
            LABEL_SERVICE: self.service_name,
            LABEL_REVISION: self.revision,
            LABEL_VERSION: self.version,
            **({LABEL_INPUTS: digest} if (digest := inputs_digest(self.service)) else {}),
        }


def scope(job_id: str, device_id: str) -> str:
    """Prefix of every engine object of one job on one device. The device is in
    it so that two agents sharing one engine (tests, odd setups) never clash."""
    return f"ef-{job_id}-{device_id}" if device_id else f"ef-{job_id}"


def workload_name(
    job_id: str, device_id: str, revision: str, service: str, inputs: str = ""
) -> str:
    """The inputs digest is in the name so that a service's new inputs start
    beside the old ones (same revision) before those are retired."""
    name = f"{scope(job_id, device_id)}-{revision}-{service}"
    return f"{name}-{inputs[:6]}" if inputs else name


def network_name(job_id: str, device_id: str, revision: str, network: str = "default") -> str:
    base = f"{scope(job_id, device_id)}-{revision}"
    return base if network == "default" else f"{base}-{network}"


def volume_name(job_id: str, device_id: str, volume: str) -> str:
    return f"{scope(job_id, device_id)}-{volume}"


@dataclass
class Workload:
    """A workload as the engine reports it."""

    id: str
    name: str
    job_id: str
    service: str
    revision: str
    version: str
    state: WorkloadState
    exit_code: int | None = None
    restarts: int = 0
    image: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    addresses: list[str] = field(default_factory=list)
    error: str | None = None
    inputs: str = ""  # inputs_digest of the service it was created for (its label)


@dataclass
class LogLine:
    stream: Literal["stdout", "stderr"]
    time: datetime | None
    text: str
