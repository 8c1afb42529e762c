"""The agent process: enrollment, the connection, and the parts that do the work.

    Agent.run()
      |- enroll (first start only) -> state dir
      |- Jobs: desired state from disk -> change queue -> runtimes   (no server needed)
      |- Connection: hello / heartbeats / desired state / commands / streams
      '- extra services (data endpoint, datasets) registered as "parts"

Everything that talks to the server goes through :attr:`Agent.connection`;
everything that touches workloads goes through :attr:`Agent.jobs`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from edgefleet.agent import facts
from edgefleet.agent import saves as instance_saves
from edgefleet.agent import volumes as project_volumes
from edgefleet.agent.commands import CommandRunner
from edgefleet.agent.connection import Backoff, Connection
from edgefleet.agent.enroll import enroll
from edgefleet.agent.errors import ConfigError, ServerUnreachable
from edgefleet.agent.jobs import Jobs
from edgefleet.agent.runtimes.base import RuntimeSet, choose_runtimes
from edgefleet.agent.settings import AgentSettings
from edgefleet.agent.state import Identity, StateDir
from edgefleet.agent.tunnels import Tunnels
from edgefleet.spec.policy import DevicePolicy
from edgefleet.wire.messages import (
    Command,
    DesiredState,
    DeviceFacts,
    Heartbeat,
    Hello,
    Message,
)
from edgefleet.wire.mux import Stream

log = logging.getLogger("edgefleet.agent")


class Part(Protocol):
    """An optional piece of the agent with its own life (data endpoint, datasets)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@functools.cache
def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()


def _new_private_key() -> str:
    # cryptography is imported here, not at the top: an agent needs it only at
    # enrollment (and for computations), and it costs several MB of memory.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    key = X25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


def public_key_of(private_b64: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    key = X25519PrivateKey.from_private_bytes(base64.b64decode(private_b64))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


class Agent:
    def __init__(self, settings: AgentSettings, runtimes: RuntimeSet | None = None) -> None:
        self.settings = settings
        self.state = StateDir(settings.state_dir)
        self.runtimes = runtimes
        self.connection: Connection | None = None
        self.identity: Identity | None = None
        self.jobs: Jobs | None = None
        self.parts: list[Part] = []
        self.stream_handlers: dict[str, Callable[[Stream], Awaitable[None]]] = {}
        self.message_handlers: dict[type[Message], Callable[[Any], Awaitable[None]]] = {}
        self.on_connected: list[Callable[[], Awaitable[None]]] = []  # after each welcome
        self.facts_hooks: list[Callable[[DeviceFacts], DeviceFacts]] = []  # e.g. local apps
        self.commands = CommandRunner(self)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.stopping = asyncio.Event()
        self.supervise_every = 2.0  # the simulator slows this down for 10,000 agents
        # The data endpoint and federated computations; the simulator leaves them
        # out (10,000 local HTTP servers and SQLite buffers measure nothing useful).
        self.with_parts = True
        self.restart_requested = False
        # Set by an over-the-air upgrade: run after a clean stop instead of a plain restart.
        self.handover: Callable[[], None] | None = None

    # -- facts ------------------------------------------------------------------------

    def policy(self) -> DevicePolicy:
        """The owner's policy, afresh (a peripheral of an allowed kind may have
        been plugged in), handed to the runtimes that enforce it."""
        policy = facts.device_policy(self.settings)
        if self.runtimes is not None:
            self.runtimes.set_policy(policy)
        return policy

    def facts(self) -> DeviceFacts:
        names = self.runtimes.names() if self.runtimes else []
        found = facts.collect(
            self.settings.state_dir, names, self.settings.peripheral, self.policy()
        )
        for hook in self.facts_hooks:
            found = hook(found)
        return found

    def ssl_context(self) -> ssl.SSLContext | None:
        """Only for https servers, and one per CA file per process: loading the CA
        bundle costs tens of milliseconds and about a megabyte each time."""
        if not any(s.startswith(("https://", "wss://")) for s in self.settings.server):
            return None
        return _ssl_context(str(self.settings.ca_file) if self.settings.ca_file else None)

    # -- life -------------------------------------------------------------------------

    async def ensure_identity(self) -> Identity:
        identity = self.state.load_identity()
        if identity is not None:
            if self.settings.server and identity.servers != self.settings.server:
                identity.servers = list(self.settings.server)
                self.state.save_identity(identity)
            if identity.private_key is None:
                identity.private_key = _new_private_key()
                identity.public_key = None
            if identity.public_key is None:
                identity.public_key = public_key_of(identity.private_key)
                self.state.save_identity(identity)
            return identity
        if not self.settings.server:
            raise ConfigError("no --server given and the state dir holds no enrollment")
        if not self.settings.provisioning_key:
            raise ConfigError(
                f"this device is not enrolled yet ({self.state.identity_path} is missing): "
                "give --provisioning-key"
            )
        private_key = _new_private_key()
        backoff = Backoff(cap=self.settings.reconnect_max_delay)
        while True:
            try:
                identity = await enroll(
                    self.settings.server,
                    self.settings.provisioning_key,
                    name=self.settings.name,
                    labels=self.settings.labels,
                    facts=self.facts(),
                    public_key=public_key_of(private_key),
                    context=self.ssl_context(),
                )
                break
            except ServerUnreachable as exc:
                delay = backoff.next_delay()
                log.warning("enrollment failed (%s); retrying in %.1f s", exc.message, delay)
                await asyncio.sleep(delay)
        identity.private_key = private_key
        identity.public_key = public_key_of(private_key)
        self.state.save_identity(identity)
        log.info(
            "enrolled as %s (%s) in project %s", identity.name, identity.device_id, identity.project
        )
        return identity

    async def run(self) -> None:
        if self.runtimes is None:
            self.runtimes = await choose_runtimes(self.settings, self.state)
        else:
            self.policy()  # runtimes given by the caller (the simulator) get the policy too
        self.identity = await self.ensure_identity()
        self.jobs = Jobs(self.state, self.runtimes, self.identity.device_id, report=self._report)
        self.jobs.supervise_every = self.supervise_every
        self.jobs.locks.default_timeout = self.settings.update_lock_timeout
        self.tunnels = Tunnels(self)
        # project volumes: sizes, tar download, removal (issue 21)
        self.stream_handlers["volume"] = project_volumes.handler(lambda: self.runtimes)
        # an instance's container committed and pushed as a new version (issue 21)
        self.stream_handlers["save"] = instance_saves.handler(lambda: self.runtimes)
        if self.with_parts:
            from edgefleet.agent.data import attach as attach_data

            attach_data(self)  # env hook before jobs start; a part like any other
        from edgefleet.agent.runtimes.isolation import attach as attach_isolation

        attach_isolation(self)  # its hook keeps jobs' networks apart from their creation on
        from edgefleet.agent.workload_files import attach as attach_files

        attach_files(self)  # secrets and configs as files on a tmpfs
        from edgefleet.agent.upgrade import attach as attach_upgrade

        attach_upgrade(self)  # over-the-air upgrades of the agent itself (issue 18)
        from edgefleet.agent.builds import attach as attach_builds

        attach_builds(self)  # Compose build: images built on this device (issue 21)
        if self.with_parts:
            from edgefleet.agent.telemetry import attach as attach_telemetry

            attach_telemetry(self)  # device health and workload logs for the server (issue 18)
        if self.with_parts and self.settings.local_api:
            from edgefleet.agent.local import attach as attach_local

            attach_local(self)  # the owner's local API and apps (issue 21)
        self.connection = Connection(
            self.identity,
            hello=self._hello,
            on_message=self._on_message,
            on_stream=self._on_stream,
            heartbeat=self._heartbeat,
            heartbeat_interval=self.settings.heartbeat_interval,
            reconnect_cap=self.settings.reconnect_max_delay,
            ssl_context=self.ssl_context(),
            on_up=self._on_up,
        )
        if self.with_parts:
            from edgefleet.agent.fed import FederatedPart

            self.parts.append(FederatedPart(self))
            from edgefleet.agent.schedule import attach as attach_periodic

            attach_periodic(self)  # periodic jobs fire from this device's clock
        await self.jobs.start()
        for part in self.parts:
            await part.start()
        try:
            connection = asyncio.create_task(self.connection.run(), name="connection")
            stop = asyncio.create_task(self.stopping.wait(), name="stop")
            done, _ = await asyncio.wait({connection, stop}, return_when=asyncio.FIRST_COMPLETED)
            for task in (connection, stop):
                task.cancel()
            if connection in done and not connection.cancelled():
                connection.result()  # re-raises DeviceRevoked
        finally:
            for part in reversed(self.parts):
                with contextlib.suppress(Exception):
                    await part.stop()
            await self.jobs.stop()
            for task in list(self._tasks):
                task.cancel()

    def request_restart(self) -> None:
        self.restart_requested = True
        self.stopping.set()

    def spawn(self, coro: Awaitable[Any], name: str = "") -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- connection callbacks -----------------------------------------------------------

    def _hello(self) -> Hello:
        assert self.jobs is not None and self.identity is not None
        return Hello(
            facts=self.facts(),
            applied_generation=self.jobs.applied_generation,
            runtime_healthy=self.jobs.runtime_healthy,
            jobs=self.jobs.statuses(),
            public_key=self.identity.public_key,
        )

    def _heartbeat(self) -> Heartbeat:
        assert self.jobs is not None
        return Heartbeat(
            applied_generation=self.jobs.applied_generation,
            runtime_healthy=self.jobs.runtime_healthy,
        )

    async def _on_up(self) -> None:
        assert self.jobs is not None
        self.jobs.connected()
        for hook in self.on_connected:
            self.spawn(hook())

    async def _report(self, message: Message) -> bool:
        if self.connection is None:
            return False
        return await self.connection.send(message)

    async def _on_message(self, message: Message) -> None:
        assert self.jobs is not None
        if isinstance(message, DesiredState):
            self.jobs.desired(message)
        elif isinstance(message, Command):
            self.spawn(self.commands.run(message))
        else:
            handler = self.message_handlers.get(type(message))
            if handler is not None:
                self.spawn(handler(message))

    async def _on_stream(self, stream: Stream) -> None:
        kind = str(stream.header.get("kind", ""))
        handler = self.stream_handlers.get(kind) or self.tunnels.handlers.get(kind)
        if handler is None:
            await stream.refuse(f"this agent does not support {kind!r} streams")
            return
        await handler(stream)
