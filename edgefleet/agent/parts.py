"""The agent's parts, in start order, each with the condition under which it runs.

Built by :meth:`edgefleet.agent.agent.Agent.run` once Jobs exist and before
they start (env, file, build and network hooks must be in place before the
first workload is created); started after Jobs, stopped in reverse order. A
part's module is imported only when the part is built: an idle agent keeps in
memory only the code of the parts it runs, and the simulator's thousands of
agents none of the heavy ones.

A builder returns the part, or ``None`` when it only wires a hook into Jobs
(image builds, workload files) or decides it cannot run here (the isolation
firewall without ``nft``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgefleet.agent.jobs import SUPERVISE_EVERY
from edgefleet.agent.part import AgentContext, Part

if TYPE_CHECKING:
    from collections.abc import Mapping

    from edgefleet.agent.part import StreamHandler
    from edgefleet.agent.settings import AgentSettings


@dataclass(frozen=True)
class Profile:
    """Which parts an agent runs: a real device runs all of them; the simulator
    (``simulated``) leaves out those that would measure nothing useful across
    10,000 virtual devices on one host (local HTTP servers, SQLite buffers,
    samplers), keeps federated computations only when asked (``fed``), and
    writes its state without fsync."""

    simulated: bool = False
    fed: bool = True
    durable: bool = True
    supervise_every: float = SUPERVISE_EVERY


DEVICE = Profile()

Builder = Callable[[AgentContext, Sequence[Part]], "Part | None"]
Condition = Callable[["AgentSettings", Profile], bool]


@dataclass(frozen=True)
class Entry:
    name: str
    when: Condition
    build: Builder


def _always(settings: AgentSettings, profile: Profile) -> bool:
    return True


def _real_device(settings: AgentSettings, profile: Profile) -> bool:
    return not profile.simulated


@dataclass(frozen=True)
class EngineStreams:
    """Stream kinds served by plain functions of the container engine."""

    handlers: Mapping[str, StreamHandler]

    def stream_handlers(self) -> Mapping[str, StreamHandler]:
        return self.handlers


def _engine_streams(ctx: AgentContext, built: Sequence[Part]) -> Part:
    from edgefleet.agent import saves, volumes

    return EngineStreams(
        {
            "volume": volumes.handler(lambda: ctx.runtimes),  # project volumes (issue 21)
            "save": saves.handler(lambda: ctx.runtimes),  # an instance committed and pushed
        }
    )


def _tunnels(ctx: AgentContext, built: Sequence[Part]) -> Part:
    from edgefleet.agent.tunnels import Tunnels

    return Tunnels(ctx)


def _data(ctx: AgentContext, built: Sequence[Part]) -> Part:
    from edgefleet.agent.data.service import DataService

    service = DataService(ctx)
    ctx.jobs.env_hooks.append(service.env)
    return service


def _isolation(ctx: AgentContext, built: Sequence[Part]) -> Part | None:
    from edgefleet.agent.isolation import firewall

    return firewall(ctx)


def _workload_files(ctx: AgentContext, built: Sequence[Part]) -> None:
    """The executor's file hook; files a reboot wiped are written again at once."""
    from edgefleet.agent.workload_files import WorkloadFiles, default_dir, rehydrate

    hook = WorkloadFiles(
        ctx.identity.private_key,
        ctx.device_id,
        ctx.settings.files_dir or default_dir(),
        ctx.settings.state_dir,
    )
    ctx.jobs.executor.file_hooks.append(hook)
    rehydrate(hook, list(ctx.jobs.assignments().values()))


def _upgrade(ctx: AgentContext, built: Sequence[Part]) -> Part:
    from edgefleet.agent.upgrade.part import UpgradePart

    return UpgradePart(ctx)


def _builds(ctx: AgentContext, built: Sequence[Part]) -> None:
    """Images for services with ``build:``, fetched from the server now connected to."""
    from edgefleet.agent.builds import Builds

    connection = ctx.connection
    ctx.jobs.executor.builds = Builds(
        lambda: connection.server,
        ctx.identity.credential,
        ctx.settings.build_context_max_bytes,
        ctx.ssl_context,
    )


def _telemetry(ctx: AgentContext, built: Sequence[Part]) -> Part:
    from edgefleet.agent.telemetry import telemetry

    return telemetry(ctx)


def _log_shipping(ctx: AgentContext, built: Sequence[Part]) -> Part:
    from edgefleet.agent.telemetry import log_shipper

    return log_shipper(ctx)


def _local_api(ctx: AgentContext, built: Sequence[Part]) -> Part:
    from edgefleet.agent.data.service import DataService
    from edgefleet.agent.local.service import LocalApi

    data = next((p for p in built if isinstance(p, DataService)), None)
    return LocalApi(ctx, data)


def _federated(ctx: AgentContext, built: Sequence[Part]) -> Part:
    from edgefleet.agent.fed import FederatedPart

    return FederatedPart(ctx)


def _periodic(ctx: AgentContext, built: Sequence[Part]) -> Part:
    from edgefleet.agent.schedule import periodic

    return periodic(ctx)


PARTS: tuple[Entry, ...] = (
    Entry("engine-streams", _always, _engine_streams),
    Entry("tunnels", _always, _tunnels),  # exec, logs, agent-logs, tcp streams
    # its env hook (EDGEFLEET_DATA_URL) is in place before any workload starts
    Entry("data", _real_device, _data),
    # its network hook keeps jobs' networks apart from their creation on; never in the
    # simulator, whose sim runtime has no networks (asking it cost ~40 us per virtual device)
    Entry("isolation", _real_device, _isolation),
    Entry("workload-files", _always, _workload_files),  # secrets and configs on a tmpfs
    Entry("upgrade", _always, _upgrade),  # over-the-air upgrades of the agent (issue 18)
    Entry("builds", _always, _builds),  # Compose build: images built on the device
    Entry("telemetry", _real_device, _telemetry),  # device health for the server
    Entry("log-shipping", lambda s, p: not p.simulated and s.logs_ship_interval > 0, _log_shipping),
    Entry("local-api", lambda s, p: not p.simulated and s.local_api, _local_api),
    Entry("federated", lambda s, p: p.fed, _federated),  # the owner's datasets
    Entry("periodic", _real_device, _periodic),  # periodic jobs from the device's clock
)


def build_parts(ctx: AgentContext, profile: Profile) -> list[Part]:
    """Build the parts this agent runs, in :data:`PARTS` order."""
    built: list[Part] = []
    for entry in PARTS:
        if entry.when(ctx.settings, profile):
            part = entry.build(ctx, built)
            if part is not None:
                built.append(part)
    return built
