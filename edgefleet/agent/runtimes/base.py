"""The runtime contract: what the agent needs from an engine to run workloads.

What a workload is (its spec, labels and names) is in :mod:`.workload`; the
names are re-exported here for the modules that take them from the contract.
:class:`Runtime` holds only what every runtime does; abilities only some
engines have (networks, volumes, exec, builds, the engine's own API) are the
small protocols of :mod:`.capabilities`, asked for with ``isinstance`` by the
caller that needs them. The container role needs networks and volumes
(:class:`ContainerRuntime`).

Implementations sit side by side (``docker.py``, ``process.py``) and are
imported by name from :data:`RUNTIMES` only when chosen, so the engine client is
never loaded on a device that runs processes only. ``sim.py`` is not among
them: the fleet simulator builds it directly, a real agent never offers it.

The device's policy (:class:`~edgefleet.spec.policy.DevicePolicy`) is built
once from the agent's settings (:func:`edgefleet.agent.facts.device_policy`)
and handed to every runtime; :meth:`RuntimeSet.refusals` is the agent's check
before it creates anything for a job. The process runtime is built only when
the owner allows it.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from edgefleet.agent.runtimes.capabilities import HasEngine, HasNetworks, HasVolumes
from edgefleet.agent.runtimes.workload import (
    LABEL_DEVICE,
    LABEL_INPUTS,
    LABEL_JOB,
    LABEL_MANAGED,
    LABEL_REVISION,
    LABEL_SERVICE,
    LABEL_VERSION,
    LogLine,
    Workload,
    WorkloadFile,
    WorkloadSpec,
    WorkloadState,
    deliverable,
    inputs_digest,
    network_name,
    scope,
    volume_name,
    workload_name,
)
from edgefleet.spec.model import AppSpec, Service
from edgefleet.spec.policy import DevicePolicy, app_refusals

if TYPE_CHECKING:
    from edgefleet.agent.settings import AgentSettings
    from edgefleet.agent.state import StateDir

__all__ = [
    "LABEL_DEVICE",
    "LABEL_INPUTS",
    "LABEL_JOB",
    "LABEL_MANAGED",
    "LABEL_REVISION",
    "LABEL_SERVICE",
    "LABEL_VERSION",
    "RUNTIMES",
    "ContainerRuntime",
    "EngineRuntime",
    "LogLine",
    "Runtime",
    "RuntimeSet",
    "Workload",
    "WorkloadFile",
    "WorkloadSpec",
    "WorkloadState",
    "choose_runtimes",
    "deliverable",
    "docker_socket",
    "host_path",
    "inputs_digest",
    "load_runtime_class",
    "network_name",
    "scope",
    "volume_name",
    "workload_name",
]


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


class ContainerRuntime(Runtime, HasNetworks, HasVolumes, Protocol):
    """The container role: a runtime whose jobs get private networks and named
    volumes (``docker``, and the simulator's ``sim``)."""


class EngineRuntime(ContainerRuntime, HasEngine, Protocol):
    """A container runtime with a Docker Engine API behind it (``docker``): what
    saves, volume archives and the job networks' gateways go to directly."""


RUNTIMES: dict[str, str] = {
    "docker": "edgefleet.agent.runtimes.docker:DockerRuntime",
    "process": "edgefleet.agent.runtimes.process:ProcessRuntime",
}


def load_runtime_class(name: str) -> type:
    module_name, _, class_name = RUNTIMES[name].partition(":")
    cls: type = getattr(importlib.import_module(module_name), class_name)
    return cls


@dataclass
class RuntimeSet:
    """The runtimes a device offers: ``container`` and ``process`` roles."""

    container: ContainerRuntime | None
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

    def engine(self) -> EngineRuntime | None:
        """The container runtime, when it has an engine's API (see :class:`EngineRuntime`)."""
        return self.container if isinstance(self.container, HasEngine) else None

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
    process: Runtime | None = None
    if policy.process:
        from edgefleet.agent.runtimes.process_user import work_root

        work = work_root(state.root, settings.process_dir)
        process = load_runtime_class("process")(state.root / "processes", policy, work)
    container: ContainerRuntime | None = None
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
