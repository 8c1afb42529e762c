"""The hub as services see it (``DeviceLink``): reaching a device held here, one
that is offline, and the hooks other modules plug in. One replica on the
in-process bus; an agent is a real :class:`~edgefleet.wire.link.Link` over an
in-memory transport, so what the hub sends is what an agent would read."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgefleet.server import assembly
from edgefleet.server.agent_session import AgentSession, DeviceRef
from edgefleet.server.bus.base import create_bus
from edgefleet.server.db.engine import async_url, create_engine
from edgefleet.server.errors import Unavailable
from edgefleet.server.gateway.hub import Hub
from edgefleet.server.settings import ServerSettings
from edgefleet.wire.commands import PING, NoArgs
from edgefleet.wire.link import Link, TransportClosed
from edgefleet.wire.messages import DesiredState, Message, Revoked, decode
from edgefleet.wire.mux import Mux, Stream, StreamRefused

DEVICE = DeviceRef(pk=1, id="d-one", name="one", project_pk=7)


class MemoryTransport:
    """The server's end of an agent connection: what it sends is kept in order."""

    def __init__(self) -> None:
        self.sent: asyncio.Queue[str | bytes] = asyncio.Queue()
        self.incoming: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.closed: tuple[int, str] | None = None

    async def send_text(self, data: str) -> None:
        if self.closed is not None:
            raise TransportClosed(*self.closed)
        await self.sent.put(data)

    async def send_bytes(self, data: bytes) -> None:
        await self.send_text(data.decode("latin-1"))

    async def receive(self) -> str | bytes:
        frame = await self.incoming.get()
        if frame is None:
            raise TransportClosed(*(self.closed or (1000, "")))
        return frame

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed is None:
            self.closed = (code, reason)
            await self.incoming.put(None)

    async def next_message(self) -> Message:
        return decode(await asyncio.wait_for(self.sent.get(), 5))


async def _ignore(_message: Message) -> None:
    return None


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    engine = create_engine(async_url(None, tmp_path))
    ctx, built = assembly.build(ServerSettings(data_dir=tmp_path), engine, create_bus("memory", {}))
    try:
        yield built
    finally:
        ctx.limits.close()
        await engine.dispose()


@pytest.fixture
async def held(hub: Hub) -> AsyncIterator[tuple[AgentSession, MemoryTransport]]:
    """A session the hub holds, its link running (attach itself needs the database)."""
    transport = MemoryTransport()
    session = AgentSession(DEVICE, Link(transport, odd=True, on_message=_ignore))
    hub.sessions[DEVICE.id] = session
    running = asyncio.create_task(session.link.run())
    try:
        yield session, transport
    finally:
        await transport.close()
        await asyncio.wait_for(running, 5)


async def test_an_offline_device_is_reported_not_queued(hub: Hub) -> None:
    assert await hub.deliver("d-nowhere", DesiredState(generation=3)) is False
    with pytest.raises(Unavailable, match="offline"):
        await hub.command("d-nowhere", PING, NoArgs(), timeout=1)
    with pytest.raises(Unavailable, match="offline"):
        await hub.open_stream("d-nowhere", {"kind": "logs"}, timeout=1)
    await hub.kick("d-nowhere", "deleted")  # nobody to tell: nothing happens


async def test_deliver_reaches_the_agent_held_here(
    hub: Hub, held: tuple[AgentSession, MemoryTransport]
) -> None:
    _session, transport = held
    assert await hub.deliver(DEVICE.id, DesiredState(generation=5)) is True
    message = await transport.next_message()
    assert isinstance(message, DesiredState) and message.generation == 5


async def test_deliver_to_a_closed_connection_says_it_was_not_delivered(
    hub: Hub, held: tuple[AgentSession, MemoryTransport]
) -> None:
    session, transport = held
    await transport.close(1006, "cut")
    await asyncio.wait_for(session.link.closed.wait(), 5)
    assert await hub.deliver(DEVICE.id, DesiredState(generation=6)) is False


async def test_kick_tells_the_agent_then_closes_with_4401(
    hub: Hub, held: tuple[AgentSession, MemoryTransport]
) -> None:
    _session, transport = held
    await hub.kick(DEVICE.id, "the device was deleted")
    message = await transport.next_message()
    assert isinstance(message, Revoked) and message.reason == "the device was deleted"
    assert transport.closed == (4401, "the device was deleted")


async def test_every_fleet_hook_runs_even_when_one_fails(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, int]] = []

    async def broken(project_pk: int) -> None:
        seen.append(("broken", project_pk))
        raise RuntimeError("a bug in one feature")

    async def follower(project_pk: int) -> None:
        seen.append(("follower", project_pk))

    hub.on_fleet_change(broken)
    hub.on_fleet_change(follower)
    with caplog.at_level(logging.ERROR, logger="edgefleet.server.gateway.hub"):
        await hub.fleet_changed(7)
    assert seen == [("broken", 7), ("follower", 7)]
    assert "fleet hook failed for project pk 7" in caplog.text
    assert "a bug in one feature" in caplog.text  # logged with its traceback


async def test_streams_an_agent_opens_go_to_the_acceptor_of_their_kind(
    hub: Hub, held: tuple[AgentSession, MemoryTransport]
) -> None:
    session, _transport = held
    accepted: list[tuple[AgentSession, Stream]] = []

    async def acceptor(who: AgentSession, stream: Stream) -> None:
        accepted.append((who, stream))

    hub.on_stream("data-file", acceptor)
    frames: list[bytes] = []

    async def send(frame: bytes) -> None:
        frames.append(frame)

    agent_side = Mux(send, odd=False)
    wanted = await agent_side.open({"kind": "data-file", "name": "a.csv"})
    await hub.accept_stream(session, wanted)
    assert accepted == [(session, wanted)]

    unknown = await agent_side.open({"kind": "nope"})
    await hub.accept_stream(session, unknown)
    with pytest.raises(StreamRefused, match="does not accept 'nope' streams"):
        await unknown.wait_accepted(1)


async def test_a_fan_out_pushed_through_the_hub_holds_its_paced_collections(
    hub: Hub, held: tuple[AgentSession, MemoryTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub owns full collections once its fleet is frozen, and asks the
    tenure for one only as calm as its pacer says: desired states delivered in
    a burst (a fan-out) make the next look busy, before any report came back."""
    _session, transport = held
    asked: list[bool] = []

    def pace(*, calm: bool) -> bool:
        asked.append(calm)
        return False

    monkeypatch.setattr(hub.tenure, "pace", pace)
    assert hub.tenure.self_paced
    await hub._pace()  # nothing sent yet: calm
    for generation in range(hub.pacer.per_turn + 1):
        assert await hub.deliver(DEVICE.id, DesiredState(generation=generation))
    await hub._pace()
    assert asked == [True, False]
    assert hub.counts().agents == 1
    for _ in range(hub.pacer.per_turn + 1):
        await transport.next_message()


async def test_the_hub_looks_for_a_paced_collection_while_it_runs(hub: Hub) -> None:
    await hub.start()
    try:
        names = {task.get_name() for task in hub._tasks}
        assert "paced-collection" in names
        assert not any(task.done() for task in hub._tasks)
    finally:
        await hub.stop()


def test_the_hub_counts_what_its_tenure_and_admission_did(hub: Hub) -> None:
    """``/metrics`` reads these from the hub: each comes from its own part."""
    hub.tenure.paced, hub.tenure.thaws = 4, 2
    hub.admission.admitted, hub.admission.refused = 30, 7
    counts = hub.counts()
    assert (counts.collections_paced, counts.thaws) == (4, 2)
    assert (counts.connections_admitted, counts.connections_refused) == (30, 7)
