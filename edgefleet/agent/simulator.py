"""``edgefleet sim``: many virtual devices in one process.

Each virtual device is a real :class:`~edgefleet.agent.agent.Agent` — the same
enrollment, connection, change queue, status reporting and command code as
``edgefleet agent`` — with the ``sim`` runtime, whose workloads start at once.
So the server sees exactly the traffic of N real agents, and what the
simulator measures is the server and the protocol, not a reimplementation.

Identities are kept under ``--state-dir`` (one folder per device), so a second
run reconnects the same fleet without enrolling again. Without ``--state-dir``
the folder is keyed by the server URLs (:func:`default_state_dir`): a fleet
enrolled on one server never presents its credentials to another. And a
simulated device whose credential a server rejects (deleted there, or a fresh
server on the same address) enrolls again when a provisioning key is given,
once per run, instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import itertools
import logging
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from edgefleet.agent.agent import Agent
from edgefleet.agent.errors import AgentError, DeviceRevoked
from edgefleet.agent.parts import Profile
from edgefleet.agent.runtimes.base import RuntimeSet
from edgefleet.agent.runtimes.sim import SimRuntime
from edgefleet.agent.settings import AgentSettings
from edgefleet.heap import Tenure, settle
from edgefleet.spec.policy import DevicePolicy
from edgefleet.wire.messages import DeviceFacts

log = logging.getLogger("edgefleet.sim")

ENROLL_THREADS = 128
"""Enrollments the simulator keeps in flight: as many as the server groups into
one transaction (``gateway.enrollments.MAX_GROUP``), so the enrollment rate it
measures is the server's. At 32 the server sat at half a core on PostgreSQL
while the simulator's threads waited on its answers (py-spy, 2026-12-03)."""


def default_state_dir(servers: list[str], root: Path | None = None) -> Path:
    """Where identities live when no ``--state-dir`` is given: one folder per set
    of servers (``127.0.0.1-8400-1a2b3c4d``), so running the simulator against a
    second server never offers it the first server's credentials."""
    normalized = sorted(s.strip().rstrip("/").lower() for s in servers)
    tag = hashlib.sha256("\n".join(normalized).encode()).hexdigest()[:8]
    host = re.sub(r"^[a-z]+://", "", normalized[0]) if normalized else "none"
    slug = re.sub(r"[^a-z0-9.]+", "-", host).strip("-")[:40] or "server"
    return (root or Path(tempfile.gettempdir()) / "edgefleet-sim") / f"{slug}-{tag}"


def spread_labels(specs: list[str], count: int) -> list[dict[str, str]]:
    """``["site=a,b,c", "tier=x"]`` -> device i gets site a/b/c round-robin, tier x."""
    axes: list[tuple[str, list[str]]] = []
    for spec in specs:
        key, _, values = spec.partition("=")
        axes.append((key.strip(), [v.strip() for v in values.split(",") if v.strip()] or [""]))
    return [{key: values[i % len(values)] for key, values in axes} for i in range(count)]


@dataclass
class SimStats:
    started: float = field(default_factory=time.monotonic)
    enrolled: int = 0
    failed: int = 0
    reenrolled: int = 0
    agents: list[Agent] = field(default_factory=list)
    tenure: Tenure | None = None

    def connected(self) -> int:
        return sum(
            1 for a in self.agents if a.connection is not None and a.connection.connected.is_set()
        )


class SimAgent(Agent):
    """An agent whose host facts are read once per process, not once per device:
    every virtual device runs on the same host with the same flags, and reading
    them (``/dev`` globs, disk, memory) costs ~6 ms each time -- three times per
    device on its first start, which held enrollment of 1,000 devices to the
    simulator's own CPU rather than the server's."""

    _facts: DeviceFacts | None = None
    _policy: DevicePolicy | None = None

    def policy(self) -> DevicePolicy:
        if SimAgent._policy is None:
            SimAgent._policy = super().policy()
        elif self.runtimes is not None:
            self.runtimes.set_policy(SimAgent._policy)
        return SimAgent._policy

    def facts(self) -> DeviceFacts:
        if SimAgent._facts is None:
            SimAgent._facts = super().facts()
        return SimAgent._facts


def _make_agent(settings: AgentSettings, supervise_every: float, fed: bool = False) -> Agent:
    """A virtual device: the ``sim`` runtime, state written without fsync, and of
    the parts only those the simulator measures (federated computations, on
    datasets declared in the device's state dir, only with ``fed``)."""
    sim = SimRuntime()
    profile = Profile(simulated=True, fed=fed, durable=False, supervise_every=supervise_every)
    return SimAgent(settings, runtimes=RuntimeSet(container=sim, process=sim), profile=profile)


async def _run_one(
    index: int, stats: SimStats, supervise_every: float, stop: asyncio.Event, fed: bool = False
) -> None:
    """Run device ``index``; if the server rejects its credential and a key was
    given, forget the identity and enroll again (once: a second rejection of a
    fresh credential means the device was deleted on purpose)."""
    agent = stats.agents[index]
    for attempt in range(2):
        try:
            await agent.run()
            return
        except DeviceRevoked as exc:
            if attempt or not agent.settings.provisioning_key or stop.is_set():
                stats.failed += 1
                log.warning("%s stopped: %s", agent.settings.name, exc.message)
                return
            log.info("%s: credential rejected, enrolling again", agent.settings.name)
            shutil.rmtree(agent.settings.state_dir, ignore_errors=True)
            stats.reenrolled += 1
            agent = _make_agent(agent.settings, supervise_every, fed)
            stats.agents[index] = agent
        except AgentError as exc:
            stats.failed += 1
            log.warning("%s stopped: %s", agent.settings.name, exc.message)
            return


@dataclass(frozen=True)
class SimFleet:
    """What ``edgefleet sim`` simulates: ``devices`` agents named
    ``<name_prefix>-NNNNN``, enrolled at ``rate`` per second (0: at once)."""

    servers: list[str]
    devices: int
    key: str | None
    state_dir: Path
    labels: list[str]
    heartbeat: float | None
    rate: float
    supervise_every: float
    fed: bool = False
    name_prefix: str = "sim"
    report_every: float = 2.0


def device_settings(fleet: SimFleet) -> Iterator[AgentSettings]:
    """Each virtual device's settings, in order. Built by copying one validated
    settings object per label set and server order (only the name and the
    state dir differ, neither checked by a validator): validating each
    device's, the environment read each time, was ~0.1 ms of the simulator's
    one event loop per device.

    Given several servers (replicas), device ``i`` lists them starting at the
    ``i``-th, round the list: an agent connects to its first server while it
    answers, so the fleet spreads over the replicas evenly, as agents
    configured with different first servers would, instead of all holding
    on to the first one (issue 16: the replica benchmark)."""
    templates: dict[tuple[tuple[str, ...], int], AgentSettings] = {}
    count = len(fleet.servers)
    for i, labels in enumerate(spread_labels(fleet.labels, fleet.devices)):
        name = f"{fleet.name_prefix}-{i:05d}"
        label = tuple(f"{k}={v}" for k, v in labels.items())
        first = i % count if count else 0
        template = templates.get((label, first))
        if template is None:
            template = templates[(label, first)] = AgentSettings(
                server=fleet.servers[first:] + fleet.servers[:first],
                provisioning_key=fleet.key,
                state_dir=fleet.state_dir / name,
                name=name,
                label=list(label),
                allow_process=True,  # the sim runtime runs nothing real: every job is accepted
                heartbeat_interval=fleet.heartbeat,
            )
        yield template.model_copy(update={"state_dir": fleet.state_dir / name, "name": name})


async def simulate(fleet: SimFleet, stop: asyncio.Event) -> SimStats:
    devices, rate = fleet.devices, fleet.rate
    supervise_every, fed = fleet.supervise_every, fleet.fed
    stats = SimStats()
    tasks: list[asyncio.Task[None]] = []
    reporter = asyncio.create_task(_report(stats, devices, fleet.report_every, stop))
    interval = 1.0 / rate if rate > 0 else 0.0
    settle()  # N agents in one process: keep the collector off what lives for the run
    for i, settings in enumerate(device_settings(fleet)):
        if stop.is_set():
            break
        stats.agents.append(_make_agent(settings, supervise_every, fed))
        tasks.append(asyncio.create_task(_run_one(i, stats, supervise_every, stop, fed)))
        if interval:
            await asyncio.sleep(interval)
        elif i % 200 == 199:
            await asyncio.sleep(0)
    # The agents are built: out of every full collection from now on. Frozen as
    # they are, without settle()'s full collection first: that walked every
    # object of every agent just built (~0.1 ms per device, paid while the fleet
    # enrolls) to find the little garbage building them left.
    gc.freeze()
    # Their connections (~130 objects each, made as they connect) are frozen
    # the way the server freezes its sessions: without it, every full
    # collection during a fan-out walked 10,000 agents' connections for
    # seconds, and the fleet took its desired states in bursts between pauses.
    # After a reconnect storm the frozen heap per connected agent doubles,
    # which thaws it, so the old connections' cycles are still freed.
    stats.tenure = Tenure(stats.connected)
    stats.tenure.install()
    try:
        await stop.wait()
    finally:
        stats.tenure.uninstall()
    for agent in stats.agents:
        agent.stopping.set()
    try:  # each device's own error is already counted and logged by _run_one
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    except TimeoutError:
        log.warning("some virtual devices did not stop within 30 s")
    reporter.cancel()
    return stats


async def _report(stats: SimStats, total: int, every: float, stop: asyncio.Event) -> None:
    for tick in itertools.count():
        await asyncio.sleep(every)
        connected = stats.connected()
        elapsed = time.monotonic() - stats.started
        again = f", {stats.reenrolled} enrolled again" if stats.reenrolled else ""
        print(
            f"[{elapsed:7.1f}s] {connected}/{total} connected, {stats.failed} failed{again}",
            flush=True,
        )
        if connected == total and tick > 0 and stop.is_set():
            return


def run(
    servers: list[str],
    devices: int,
    *,
    key: str | None,
    state_dir: Path,
    labels: list[str],
    heartbeat: float | None,
    rate: float,
    supervise_every: float,
    duration: float | None,
    fed: bool = False,
) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    state_dir.mkdir(parents=True, exist_ok=True)

    async def main() -> SimStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Enrollment runs the stdlib HTTP client in threads: the default pool
        # (cores + 4) would hold a thousand first starts to six at a time.
        loop.set_default_executor(ThreadPoolExecutor(ENROLL_THREADS, "sim-enroll"))
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        if duration:
            loop.call_later(duration, stop.set)
        fleet = SimFleet(
            servers, devices, key, state_dir, labels, heartbeat, rate, supervise_every, fed
        )
        return await simulate(fleet, stop)

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        stats = runner.run(main())
    return 1 if stats.failed else 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (it is, with the server's uvicorn[standard]):
    thousands of agents in one process spend much of their loop's time in
    connects, socket reads and callbacks, which it does in C. The simulator
    shares the machine with the server it measures, so what it saves the
    server gets."""
    try:
        import uvloop
    except ImportError:  # asyncio's own loop: slower, same behaviour
        return None
    return uvloop.new_event_loop
