"""Optional abilities of a runtime, each a small ``runtime_checkable`` protocol.

:class:`~edgefleet.agent.runtimes.base.Runtime` holds only what every runtime
does (ping, list, prepare, create, start, stop, remove, logs). What only some
engines can do is asked for here, with ``isinstance``, by the caller that needs
it: a runtime never has to carry no-op methods to fit the contract, and a
caller that meets a runtime without the ability refuses (or skips) in one
place, in words a person can act on.

Which runtime has which ability (the conformance suite,
``tests/unit/agent/runtimes/test_runtime_conformance.py``, holds this table)::

    ability               docker  process  sim
    HasNetworks             yes      -     yes
    HasVolumes              yes      -     yes
    HasNetworkHooks         yes      -      -
    CanExec                 yes     yes    yes
    CanExecInteractive      yes     yes     -
    CanBuild                yes      -      -
    HasEngine               yes      -      -

The engine client (:mod:`edgefleet.agent.engine`) is named only for type
checking, so a process-only device never loads it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from edgefleet.agent.engine import EngineClient
    from edgefleet.agent.execs import ExecRequest, ExecSession
    from edgefleet.agent.runtimes.workload import WorkloadSpec

NetworkHook = Callable[[], Awaitable[None]]


@runtime_checkable
class HasNetworks(Protocol):
    """Private networks per job (the process runtime has none: its workloads
    share the device's network)."""

    async def ensure_network(self, name: str, job_id: str, internal: bool = False) -> None:
        """Create the network if missing, labelled with the job and this device."""

    async def remove_network(self, name: str) -> None:
        """Remove the network if present."""

    async def list_networks(self, job_id: str) -> list[str]:
        """Names of the job's networks that exist."""


@runtime_checkable
class HasVolumes(Protocol):
    """Named volumes per job (a process keeps its files in its working directory)."""

    async def ensure_volume(self, name: str, job_id: str) -> None:
        """Create the named volume if missing."""

    async def remove_volumes(self, job_id: str) -> None:
        """Remove every volume of the job."""


@runtime_checkable
class HasNetworkHooks(Protocol):
    """Callbacks awaited after a job network is created or removed, before any
    workload joins it: the isolation firewall follows networks at once."""

    network_hooks: list[NetworkHook]


@runtime_checkable
class CanExec(Protocol):
    """Run a command inside a workload (health checks, ``edgefleet exec`` without a TTY)."""

    async def exec(
        self, workload_id: str, argv: list[str], env: dict[str, str], timeout: float
    ) -> tuple[int, bytes, bytes]:
        """Returns (exit code, stdout, stderr)."""


@runtime_checkable
class CanExecInteractive(Protocol):
    """Start an interactive command inside a workload (stdin, TTY, resize)."""

    async def exec_session(self, workload_id: str, request: ExecRequest) -> ExecSession:
        """The running session; the caller pumps it and closes it."""


@runtime_checkable
class CanBuild(Protocol):
    """Build an image on the device (services with ``build:``)."""

    async def build(
        self, spec: WorkloadSpec, context: Path, progress: Callable[[str], None]
    ) -> None:
        """Build ``spec.service.build`` from the plain tar ``context`` and tag it
        ``spec.service.image``, calling ``progress`` (on the event loop) with
        each step; raise RuntimeFailure with the engine's error."""


@runtime_checkable
class HasEngine(Protocol):
    """A Docker Engine API behind the runtime: for what goes to the engine
    directly (job networks' gateways, volume archives, saving a container as
    an image). Only the ``docker`` runtime has one."""

    def engine_api(self) -> EngineClient:
        """The engine's API client, created on first use. A method, not a
        property: ``isinstance`` against this protocol must not reach the engine."""

    async def is_podman(self) -> bool:
        """Podman's compatible API needs a few things said differently."""
