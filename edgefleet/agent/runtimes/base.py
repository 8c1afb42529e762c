"""The runtime contract: what the agent needs from an engine to run workloads.

A *workload* is one service of one job at one revision: a container, or a
supervised process. Every workload carries labels (job, device, service,
revision) so the agent can always rebuild its view from the engine alone:
after an agent restart, a manual ``podman rm`` or a crash mid-change,
:meth:`Runtime.workloads` is the truth and reconcile works from it.

Implementations sit side by side (``docker.py``, ``process.py``, ``sim.py``)
and are imported by name from :data:`RUNTIMES` only when chosen, so the
docker SDK is never loaded on a device that runs processes only.
Optional abilities are separate protocols (:class:`Execer`).

The device's policy (:class:`~edgefleet.spec.policy.DevicePolicy`) is built
once from the agent's settings (:func:`edgefleet.agent.facts.device_policy`)
and handed to every runtime; :meth:`RuntimeSet.refusals` is the agent's check
before it creates anything for a job. The process runtime is built only when
the owner allows it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from edgefleet.spec.model import AppSpec, Service
from edgefleet.spec.policy import DevicePolicy, app_refusals

if TYPE_CHECKING:
    from edgefleet.agent.execs import ExecSession
    from edgefleet.agent.settings import AgentSettings
    from edgefleet.agent.state import StateDir

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
    workdir: Path | None = None
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


class Runtime(Protocol):
    """An engine the agent runs workloads in."""

    name: str
    device_id: str  # set by RuntimeSet.bind: list and remove only this device's objects
    policy: DevicePolicy  # set by RuntimeSet.set_policy: what the device's owner allows

    async def ping(self) -> bool:
        """True when the engine answers; False makes the device not ready."""

    async def workloads(self, job_id: str | None = None) -> list[Workload]:
        """Every workload this agent manages (optionally of one job), from the engine."""

    async def prepare(self, spec: WorkloadSpec, auth: dict[str, dict[str, str]]) -> None:
        """Make the image (or binary) available per the pull policy; raise
        :class:`~edgefleet.agent.errors.RuntimeFailure` with a plain reason."""

    async def ensure_network(self, name: str, job_id: str, internal: bool = False) -> None:
        """Create a private network if missing (no-op for runtimes without networks),
        labelled with the job and this device."""

    async def remove_network(self, name: str) -> None:
        """Remove a network if present."""

    async def ensure_volume(self, name: str, job_id: str) -> None:
        """Create a named volume if missing."""

    async def remove_volumes(self, job_id: str) -> None:
        """Remove every volume of a job."""

    async def list_networks(self, job_id: str) -> list[str]:
        """Names of the job's networks that exist."""

    async def create(self, spec: WorkloadSpec) -> str:
        """Create (not start) a workload; returns its id. Creating one whose name
        exists returns the existing id (idempotent)."""

    async def start(self, workload_id: str) -> None:
        """Start a created or stopped workload."""

    async def stop(self, workload_id: str, timeout: float) -> None:
        """Stop gracefully, killing after ``timeout`` seconds."""

    async def remove(self, workload_id: str) -> None:
        """Remove (stopping it first if needed); absent is not an error."""

    def logs(
        self, workload_id: str, *, tail: int | None, since: datetime | None, follow: bool
    ) -> AsyncIterator[LogLine]:
        """The workload's output, oldest first; with ``follow``, then as it comes."""


@runtime_checkable
class Execer(Protocol):
    async def exec(
        self, workload_id: str, argv: list[str], env: dict[str, str], timeout: float
    ) -> tuple[int, bytes, bytes]:
        """Run a command inside the workload; returns (exit code, stdout, stderr)."""


@runtime_checkable
class InteractiveExecer(Protocol):
    async def exec_session(
        self,
        workload_id: str,
        argv: list[str],
        env: dict[str, str],
        *,
        tty: bool,
        cols: int,
        rows: int,
    ) -> ExecSession:
        """Start an interactive command inside the workload (stdin, TTY, resize)."""


RUNTIMES: dict[str, str] = {
    "docker": "edgefleet.agent.runtimes.docker:DockerRuntime",
    "process": "edgefleet.agent.runtimes.process:ProcessRuntime",
    "sim": "edgefleet.agent.runtimes.sim:SimRuntime",
}


def load_runtime_class(name: str) -> type:
    module_name, _, class_name = RUNTIMES[name].partition(":")
    cls: type = getattr(importlib.import_module(module_name), class_name)
    return cls


@dataclass
class RuntimeSet:
    """The runtimes a device offers: ``container`` and ``process`` roles."""

    container: Runtime | None
    process: Runtime | None
    policy: DevicePolicy = field(default_factory=DevicePolicy)

    def set_policy(self, policy: DevicePolicy) -> None:
        """The owner's policy, for this set's check and every runtime's."""
        self.policy = policy
        for runtime in self.all():
            runtime.policy = policy

    def refusals(self, spec: AppSpec) -> list[str]:
        """Every reason this device refuses ``spec``, with host paths resolved as
        the device sees them; checked before anything is created for a job."""
        return app_refusals(spec, self.policy, host_path)

    def bind(self, device_id: str) -> None:
        """Scope every runtime to this device's workloads (by label)."""
        for runtime in self.all():
            runtime.device_id = device_id

    def names(self) -> list[str]:
        names = []
        if self.container is not None:
            names.append(self.container.name)
        if self.process is not None and self.process is not self.container:
            names.append(self.process.name)
        return names

    def all(self) -> list[Runtime]:
        found: list[Runtime] = []
        for runtime in (self.container, self.process):
            if runtime is not None and runtime not in found:
                found.append(runtime)
        return found

    def for_service(self, service: Service) -> Runtime | None:
        return self.process if service.runtime == "process" else self.container


def host_path(path: str) -> str:
    """A host path as the device sees it: ``~`` expanded, relative paths taken
    from the agent's working directory, symlinks resolved."""
    return os.path.realpath(os.path.expanduser(path))


def docker_socket(explicit: str | None) -> str | None:
    """Find the engine like the docker CLI does: flag, DOCKER_HOST, default sockets."""
    if explicit:
        return explicit
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    for path in ("/var/run/docker.sock", "/run/podman/podman.sock", "/var/run/balena-engine.sock"):
        if os.path.exists(path):
            return f"unix://{path}"
    return None


async def choose_runtimes(settings: AgentSettings, state: StateDir) -> RuntimeSet:
    from edgefleet.agent.errors import ConfigError
    from edgefleet.agent.facts import device_policy

    policy = device_policy(settings)
    if settings.runtime == "sim":
        sim = load_runtime_class("sim")()
        found = RuntimeSet(container=sim, process=sim)
        found.set_policy(policy)
        return found
    process: Runtime | None = None
    if policy.process:
        from edgefleet.agent.runtimes.process_user import work_root

        work = work_root(state.root, settings.process_dir)
        process = load_runtime_class("process")(state.root / "processes", policy, work)
    container: Runtime | None = None
    if settings.runtime != "process":
        socket = docker_socket(settings.docker_host)
        if socket is not None:
            docker = load_runtime_class("docker")(socket, policy)
            if settings.runtime == "docker" or await docker.ping():
                container = docker
        if container is None and settings.runtime == "docker":
            raise ConfigError(
                "--runtime docker: no Docker Engine API found (set DOCKER_HOST or --docker-host)"
            )
    if container is None and process is None:
        logging.getLogger(__name__).warning(
            "this device offers no runtime: no container engine found, and the process runtime "
            "is not allowed (its owner turns it on with --allow-process); every job is refused"
        )
    found = RuntimeSet(container=container, process=process)
    found.set_policy(policy)
    return found
