"""The agent process: enrollment, the connection, and the parts that do the work.

    Agent.run()
      |- enroll (first start only) -> state dir; the daemon then starts again
      |  (main.run), so what enrolling loaded is not kept for months
      |- Jobs: desired state from disk -> change queue -> runtimes   (no server needed)
      |- Connection: hello / heartbeats / desired state / commands / streams
      |- parts (agent/parts.py: PARTS, in start order, each with its condition),
      |  built from an AgentContext, hooked in by the phases they implement
      |  (agent/part.py): start/stop, on_connected, message, stream and
      |  command handlers, facts hooks
      '- Jobs start, then the parts, then the connection runs until stopped

Everything that talks to the server goes through :attr:`Agent.connection`;
everything that touches workloads goes through :attr:`Agent.jobs`. Parts
never see the agent itself, only their context.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from edgefleet.agent import facts
from edgefleet.agent.commands import CommandRunner
from edgefleet.agent.connection import Backoff, Connection
from edgefleet.agent.enroll import enroll
from edgefleet.agent.errors import ConfigError, ServerUnreachable
from edgefleet.agent.jobs import Jobs
from edgefleet.agent.part import (
    AddsFacts,
    AgentContext,
    CommandHandler,
    HandlesCommands,
    HandlesMessages,
    HandlesStreams,
    MessageHandler,
    OnConnected,
    Part,
    Starts,
    Stops,
    StreamHandler,
)
from edgefleet.agent.parts import DEVICE, Profile, build_parts
from edgefleet.agent.runtimes.base import RuntimeSet, choose_runtimes
from edgefleet.agent.settings import AgentSettings
from edgefleet.agent.state import Identity, StateDir
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

if TYPE_CHECKING:  # ssl loads only for an https server (agent/footprint.py)
    import ssl

log = logging.getLogger("edgefleet.agent")


@functools.cache
def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    from edgefleet.agent.tls import client_context  # only for an https server

    return client_context(ca_file)


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
    """One device's agent. Its parts (:mod:`edgefleet.agent.parts`) are built in
    :meth:`run` from an :class:`~edgefleet.agent.part.AgentContext` and never see
    the agent itself; ``profile`` says which of them run (the simulator's differ)."""

    def __init__(
        self,
        settings: AgentSettings,
        runtimes: RuntimeSet | None = None,
        profile: Profile = DEVICE,
        restart_after_enrolling: bool = False,
    ) -> None:
        self.settings = settings
        self.profile = profile
        self.state = StateDir(settings.state_dir, durable=profile.durable)
        self.runtimes = runtimes
        self.connection: Connection | None = None
        self.identity: Identity | None = None
        self.jobs: Jobs | None = None
        self.parts: list[Part] = []
        self.commands: CommandRunner | None = None
        self._streams: dict[str, StreamHandler] = {}
        self._messages: dict[type[Message], MessageHandler] = {}
        self._commands: dict[str, CommandHandler] = {}
        self._connected: list[OnConnected] = []
        self._facts_hooks: list[AddsFacts] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.stopping = asyncio.Event()
        self.restart_requested = False
        # Set by an over-the-air upgrade: run after a clean stop instead of a plain restart.
        self.handover: Callable[[], None] | None = None
        # The device daemon's first start: enroll, then stop for a fresh start (see run()).
        self.restart_after_enrolling = restart_after_enrolling
        self.enrolled = False  # this process enrolled the device

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
        for part in self._facts_hooks:
            found = part.facts_hook(found)
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
        public_key = public_key_of(private_key)  # once: each derivation is an X25519 operation
        backoff = Backoff(cap=self.settings.reconnect_max_delay)
        while True:
            try:
                identity = await enroll(
                    self.settings.server,
                    self.settings.provisioning_key,
                    name=self.settings.name,
                    labels=self.settings.labels,
                    facts=self.facts(),
                    public_key=public_key,
                    context=self.ssl_context(),
                )
                break
            except ServerUnreachable as exc:
                delay = backoff.next_delay()
                log.warning("enrollment failed (%s); retrying in %.1f s", exc.message, delay)
                await asyncio.sleep(delay)
        identity.private_key = private_key
        identity.public_key = public_key
        self.state.save_identity(identity)
        self.enrolled = True
        log.info(
            "enrolled as %s (%s) in project %s", identity.name, identity.device_id, identity.project
        )
        return identity

    async def assemble(self) -> AgentContext:
        """Runtimes, identity (enrolling on first start), Jobs and the connection,
        and the context the parts are built from; :meth:`run` starts with this."""
        if self.runtimes is None:
            self.runtimes = await choose_runtimes(self.settings, self.state)
        else:
            self.policy()  # runtimes given by the caller (the simulator) get the policy too
        self.identity = await self.ensure_identity()
        self.jobs = Jobs(self.state, self.runtimes, self.identity.device_id, report=self._report)
        self.jobs.supervise_every = self.profile.supervise_every
        self.jobs.locks.default_timeout = self.settings.update_lock_timeout
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
        return AgentContext(
            settings=self.settings,
            state=self.state,
            identity=self.identity,
            runtimes=self.runtimes,
            jobs=self.jobs,
            connection=self.connection,
            ssl_context=self.ssl_context(),
            spawn=self.spawn,
            facts=self.facts,
            request_restart=self.request_restart,
        )

    async def run(self) -> None:
        context = await self.assemble()
        if self.enrolled and self.restart_after_enrolling:
            # Enrolling loaded cryptography, urllib and http.client (~16 MB RSS),
            # which a process keeps until it ends, and a device's first process may
            # run for months: stop before anything starts, so the daemon starts
            # again from its stored enrollment without them (issue 18).
            log.info("enrolled; starting again without what enrolling loaded")
            self.restart_requested = True
            return
        jobs, connection = context.jobs, context.connection
        self._add_parts(build_parts(context, self.profile))
        self.commands = CommandRunner(context, self._commands)
        await jobs.start()
        started: list[Part] = []
        try:
            for part in self.parts:
                if issubclass(type(part), Starts):  # see _add_parts
                    await cast(Starts, part).start()
                started.append(part)
            running = asyncio.create_task(connection.run(), name="connection")
            stop = asyncio.create_task(self.stopping.wait(), name="stop")
            done, _ = await asyncio.wait({running, stop}, return_when=asyncio.FIRST_COMPLETED)
            for task in (running, stop):
                task.cancel()
            if running in done and not running.cancelled():
                running.result()  # re-raises DeviceRevoked
        finally:
            for part in reversed(started):
                if issubclass(type(part), Stops):
                    await self._stop(cast(Stops, part))
            await jobs.stop()
            for task in list(self._tasks):
                task.cancel()

    def _add_parts(self, parts: list[Part]) -> None:
        """Take each part's phases: handlers by message type, stream kind and
        command name, hooks after each welcome and on the facts.

        A phase is asked of the part's class (``issubclass``, whose answer
        ABCMeta caches per class), not of the part: on Python 3.11 ``isinstance``
        against a runtime-checkable Protocol walks the Protocol's members on
        every call (~30 us), and the fleet simulator asked ~20 of them per
        virtual device, a tenth of its CPU while a fleet enrolls. The two agree
        because parts implement their phases as methods of their class."""
        self.parts = parts
        for part in parts:
            kind = type(part)
            if issubclass(kind, HandlesMessages):
                self._messages.update(cast(HandlesMessages, part).message_handlers())
            if issubclass(kind, HandlesStreams):
                self._streams.update(cast(HandlesStreams, part).stream_handlers())
            if issubclass(kind, HandlesCommands):
                self._commands.update(cast(HandlesCommands, part).command_handlers())
            if issubclass(kind, OnConnected):
                self._connected.append(cast(OnConnected, part))
            if issubclass(kind, AddsFacts):
                self._facts_hooks.append(cast(AddsFacts, part))

    @staticmethod
    async def _stop(part: Stops) -> None:
        """A part that fails to stop must not keep the others (and Jobs) from
        stopping: its error is logged, with its traceback, and the stop goes on."""
        try:
            await part.stop()
        except Exception:
            log.exception("stopping %s failed", type(part).__name__)

    def request_restart(self, handover: Callable[[], None] | None = None) -> None:
        if handover is not None:
            self.handover = handover
        self.restart_requested = True
        self.stopping.set()

    def spawn(self, coro: Awaitable[Any], name: str = "") -> asyncio.Task[Any]:
        """Run ``coro`` (a handler, a hook, a command) as a task the agent cancels
        when it stops; its failure is logged once, with its traceback, when it ends."""
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("%s failed", task.get_name(), exc_info=error)

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
        for part in self._connected:
            self.spawn(part.on_connected())

    async def _report(self, message: Message) -> bool:
        if self.connection is None:
            return False
        return await self.connection.send(message)

    async def _on_message(self, message: Message) -> None:
        assert self.jobs is not None
        if isinstance(message, DesiredState):
            self.jobs.desired(message)
        elif isinstance(message, Command):
            assert self.commands is not None  # built before the connection runs
            self.spawn(self.commands.run(message))
        else:
            handler = self._messages.get(type(message))
            if handler is not None:
                self.spawn(handler(message))

    async def _on_stream(self, stream: Stream) -> None:
        kind = str(stream.header.get("kind", ""))
        handler = self._streams.get(kind)
        if handler is None:
            await stream.refuse(f"this agent does not support {kind!r} streams")
            return
        await handler(stream)
