"""One agent connection seen from either end (``wire/link.py``), over an in-memory pipe.

The pipe is a real :class:`~edgefleet.wire.link.Transport`: what one end
sends the other receives, in order, and a closed gate makes sends wait as a
slow network would. That is how the tests show that a control message
overtakes queued stream data, that stream data is held back when the
network is slow, and what happens when either end goes away.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from edgefleet.wire.link import Flag, Link, TransportClosed
from edgefleet.wire.messages import Heartbeat, Message
from edgefleet.wire.mux import Stream, StreamError

WAIT = 5.0
Frame = str | bytes


class Pipe:
    """One end of an in-memory WebSocket."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[Frame | TransportClosed] = asyncio.Queue()
        self.peer: Pipe = self
        self.sent: list[Frame] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.closed_with: tuple[int, str] | None = None
        self.broken: tuple[int, str] | None = None  # sends fail, as on a dead socket

    @staticmethod
    def pair() -> tuple[Pipe, Pipe]:
        a, b = Pipe(), Pipe()
        a.peer, b.peer = b, a
        return a, b

    async def _send(self, data: Frame) -> None:
        await self.gate.wait()
        if self.closed_with is not None or self.broken is not None:
            raise TransportClosed(*(self.closed_with or self.broken or (1006, "")))
        self.sent.append(data)
        self.peer.incoming.put_nowait(data)

    async def send_text(self, data: str) -> None:
        await self._send(data)

    async def send_bytes(self, data: bytes) -> None:
        await self._send(data)

    async def receive(self) -> Frame:
        item = await self.incoming.get()
        if isinstance(item, TransportClosed):
            self.incoming.put_nowait(item)  # stays closed
            raise item
        return item

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed_with is not None:
            return
        self.closed_with = (code, reason)
        self.incoming.put_nowait(TransportClosed(code, reason))
        if self.peer.closed_with is None:
            self.peer.closed_with = (code, reason)
            self.peer.incoming.put_nowait(TransportClosed(code, reason))


@dataclass
class End:
    link: Link
    pipe: Pipe
    messages: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


async def echo(stream: Stream) -> None:
    await stream.accept({"echo": True})
    while (chunk := await stream.recv()) is not None:
        await stream.send(chunk)
    await stream.close()


async def hold(stream: Stream) -> None:
    await stream.accept()
    await asyncio.Event().wait()


def make_end(pipe: Pipe, *, odd: bool, data_queue: int = 8) -> End:
    queue: asyncio.Queue[Message] = asyncio.Queue()

    async def on_message(message: Message) -> None:
        await queue.put(message)

    async def on_stream(stream: Stream) -> None:
        await (echo(stream) if stream.header.get("echo") else hold(stream))

    link = Link(pipe, odd=odd, on_message=on_message, on_stream=on_stream, data_queue=data_queue)
    end = End(link, pipe, queue)
    end.task = asyncio.create_task(link.run())
    return end


@pytest.fixture
async def ends(request: pytest.FixtureRequest) -> AsyncIterator[tuple[End, End]]:
    """A server end (odd stream ids) and an agent end joined by a pipe."""
    data_queue = getattr(request, "param", 8)
    a_pipe, b_pipe = Pipe.pair()
    server = make_end(a_pipe, odd=True, data_queue=data_queue)
    agent = make_end(b_pipe, odd=False)
    yield server, agent
    a_pipe.gate.set()
    await a_pipe.close(1001, "test over")
    for end in (server, agent):
        assert end.task is not None
        await asyncio.wait_for(end.task, WAIT)


def texts_after(pipe: Pipe, start: int) -> list[str]:
    return ["text" if isinstance(f, str) else "data" for f in pipe.sent[start:]]


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


# -- control messages -----------------------------------------------------------------


async def test_control_messages_arrive_decoded_and_in_order(ends: tuple[End, End]) -> None:
    server, agent = ends
    for n in range(5):
        await agent.link.send(Heartbeat(applied_generation=n))
    got = [await asyncio.wait_for(server.messages.get(), WAIT) for _ in range(5)]
    assert got == [Heartbeat(applied_generation=n) for n in range(5)]


async def test_unknown_and_malformed_control_messages_are_dropped(ends: tuple[End, End]) -> None:
    """A newer peer may send types this end does not know: the link skips them
    and keeps reading instead of dropping the connection."""
    server, agent = ends
    await agent.pipe.send_text('{"type": "from-the-future", "x": 1}')
    await agent.pipe.send_text("not json at all")
    await agent.pipe.send_text('{"type": "heartbeat", "unknown_field": 1}')
    await agent.pipe.send_bytes(b"\x03")  # a binary frame too short to be a stream frame
    await agent.link.send(Heartbeat(applied_generation=7))
    assert await asyncio.wait_for(server.messages.get(), WAIT) == Heartbeat(applied_generation=7)
    assert server.messages.empty()
    assert not server.link.closed.is_set()


# -- streams --------------------------------------------------------------------------


async def test_streams_cross_the_link_both_ways_intact(ends: tuple[End, End]) -> None:
    server, agent = ends
    stream = await server.link.mux.open({"echo": True})
    assert await stream.wait_accepted(WAIT) == {"echo": True}
    payload = os.urandom(1024 * 1024)  # several windows: flow control through the link
    sender = asyncio.create_task(stream.send(payload))
    received = bytearray()
    while len(received) < len(payload):
        chunk = await asyncio.wait_for(stream.recv(), WAIT)
        assert chunk is not None
        received += chunk
    await sender
    assert bytes(received) == payload
    agent_stream = await agent.link.mux.open({"echo": True})  # the agent opens them too
    await agent_stream.wait_accepted(WAIT)
    await agent_stream.send(b"ping")
    assert await asyncio.wait_for(agent_stream.recv(), WAIT) == b"ping"
    assert stream.id % 2 == 1
    assert agent_stream.id % 2 == 0


async def test_a_control_message_overtakes_queued_stream_data(ends: tuple[End, End]) -> None:
    """A heartbeat waits for at most the one stream frame already on the wire."""
    server, agent = ends
    stream = await server.link.mux.open({"hold": True})
    await stream.wait_accepted(WAIT)
    start = len(server.pipe.sent)
    server.pipe.gate.clear()  # the network stalls
    sender = asyncio.create_task(stream.send(os.urandom(4 * 64 * 1024)))  # four frames
    await until(lambda: len(server.link._data) == 3, "three frames queued behind one")
    for n in range(3):
        await server.link.send(Heartbeat(applied_generation=n))
    server.pipe.gate.set()
    await asyncio.wait_for(sender, WAIT)
    await until(lambda: len(server.pipe.sent) - start == 7, "every frame sent")
    assert texts_after(server.pipe, start) == [
        "data",
        "text",
        "text",
        "text",
        "data",
        "data",
        "data",
    ]
    got = [await asyncio.wait_for(agent.messages.get(), WAIT) for _ in range(3)]
    assert [m.applied_generation for m in got if isinstance(m, Heartbeat)] == [0, 1, 2]


@pytest.mark.parametrize("ends", [2], indirect=True)
async def test_a_slow_network_holds_stream_data_back_but_not_control(
    ends: tuple[End, End],
) -> None:
    """With room for two queued frames, a writer on a stalled network gets
    three frames out of its hands (one on the wire, two queued) and then waits;
    control messages still go in at once and go out first."""
    server, agent = ends
    stream = await server.link.mux.open({"echo": True})
    await stream.wait_accepted(WAIT)
    start = len(server.pipe.sent)
    server.pipe.gate.clear()
    handed_over: list[int] = []

    async def produce() -> None:
        for n in range(10):
            await stream.send(b"%d" % n)
            handed_over.append(n)

    producer = asyncio.create_task(produce())
    await until(lambda: len(handed_over) == 3, "three frames handed over")
    await asyncio.sleep(0.1)
    assert handed_over == [0, 1, 2]  # the fourth waits for room: memory stays bounded
    assert not producer.done()
    await asyncio.wait_for(server.link.send(Heartbeat(applied_generation=1)), 0.5)
    server.pipe.gate.set()
    await asyncio.wait_for(producer, WAIT)
    echoed = [await asyncio.wait_for(stream.recv(), WAIT) for _ in range(10)]
    assert echoed == [b"%d" % n for n in range(10)]
    assert texts_after(server.pipe, start)[:2] == ["data", "text"]
    assert await asyncio.wait_for(agent.messages.get(), WAIT) == Heartbeat(applied_generation=1)


# -- the end of a connection ----------------------------------------------------------


async def test_when_the_peer_closes_run_ends_and_everything_open_fails(
    ends: tuple[End, End],
) -> None:
    server, agent = ends
    stream = await server.link.mux.open({"hold": True})
    await stream.wait_accepted(WAIT)
    await agent.pipe.close(4001, "device revoked")
    assert server.task is not None
    await asyncio.wait_for(server.task, WAIT)
    assert server.link.closed.is_set()
    assert (server.link.close_code, server.link.close_reason) == (4001, "device revoked")
    with pytest.raises(StreamError, match="device revoked"):
        await stream.recv()
    with pytest.raises(TransportClosed) as caught:
        await server.link.send(Heartbeat())
    assert caught.value.code == 4001
    with pytest.raises(StreamError):
        await server.link.mux.open({"echo": True})
    assert len(server.link.mux) == 0


async def test_close_flushes_queued_control_messages_first(ends: tuple[End, End]) -> None:
    server, agent = ends
    for n in range(3):
        await server.link.send(Heartbeat(applied_generation=n))
    await server.link.close(4000, "bye")
    got = [await asyncio.wait_for(agent.messages.get(), WAIT) for _ in range(3)]
    assert got == [Heartbeat(applied_generation=n) for n in range(3)]
    assert agent.task is not None
    await asyncio.wait_for(agent.task, WAIT)
    assert (agent.link.close_code, agent.link.close_reason) == (4000, "bye")
    assert server.pipe.closed_with == (4000, "bye")


async def test_close_does_not_wait_forever_on_a_stalled_network(ends: tuple[End, End]) -> None:
    server, _ = ends
    server.pipe.gate.clear()
    await server.link.send(Heartbeat())
    await server.link.send(Heartbeat())  # one is stuck on the wire, one stays queued
    started = time.monotonic()
    await asyncio.wait_for(server.link.close(1001, "going away"), WAIT)
    assert time.monotonic() - started < 2
    assert server.pipe.closed_with == (1001, "going away")
    assert server.task is not None
    await asyncio.wait_for(server.task, WAIT)


async def test_a_failed_write_closes_the_link(ends: tuple[End, End]) -> None:
    server, _ = ends
    server.pipe.broken = (1006, "broken pipe")  # the socket died under the writer
    await server.link.send(Heartbeat())
    assert server.task is not None
    await asyncio.wait_for(server.task, WAIT)
    assert server.link.closed.is_set()
    assert server.pipe.closed_with is not None  # the link closed its transport
    with pytest.raises(TransportClosed):
        await server.link.send(Heartbeat())


@pytest.mark.parametrize("ends", [1], indirect=True)
async def test_a_stream_writer_waiting_for_room_fails_when_the_connection_ends(
    ends: tuple[End, End],
) -> None:
    """A proxied download blocked on a stalled network must not hang forever
    once the device disconnects: its send raises."""
    server, _ = ends
    stream = await server.link.mux.open({"hold": True})
    await stream.wait_accepted(WAIT)
    server.pipe.gate.clear()

    async def produce() -> None:
        for _ in range(10):
            await stream.send(b"x" * 1024)

    producer = asyncio.create_task(produce())
    await until(lambda: len(server.link._data) == server.link._data_queue, "the data queue to fill")
    await asyncio.sleep(0.05)
    assert not producer.done()
    server.pipe.incoming.put_nowait(TransportClosed(1006, "device gone"))
    assert server.task is not None
    await asyncio.wait_for(server.task, WAIT)
    with pytest.raises((StreamError, TransportClosed), match="device gone"):
        await asyncio.wait_for(producer, WAIT)


async def test_a_writer_that_fails_unexpectedly_surfaces_after_the_link_ended() -> None:
    """Only a closed transport is the writer's expected end; any other failure is
    a bug that ``run`` re-raises, once the link is closed for everyone waiting."""

    class Faulty(Pipe):
        async def send_text(self, data: str) -> None:
            raise RuntimeError("a bug in the transport")

    mine, theirs = Faulty(), Pipe()
    mine.peer, theirs.peer = theirs, mine
    end = make_end(mine, odd=True)
    assert end.task is not None
    await end.link.send(Heartbeat())
    await asyncio.sleep(0.05)  # the writer has died; the reader still waits
    await theirs.close(1001, "peer left")
    with pytest.raises(RuntimeError, match="a bug in the transport"):
        await asyncio.wait_for(end.task, WAIT)
    assert end.link.closed.is_set()
    with pytest.raises(StreamError):
        await end.link.mux.open({"echo": True})


async def test_a_flag_wakes_every_waiter_and_one_cancelled_waiter_leaves_the_others() -> None:
    flag = Flag()
    first = asyncio.create_task(flag.wait())
    second = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    assert not second.done()
    flag.set()
    await asyncio.wait_for(second, WAIT)
    assert first.cancelled() and flag.is_set()
    await asyncio.wait_for(flag.wait(), WAIT)  # set: returns at once
    flag.clear()
    third = asyncio.create_task(flag.wait())
    await asyncio.sleep(0.01)
    assert not third.done()
    flag.set()
    await asyncio.wait_for(third, WAIT)


async def test_a_link_at_rest_holds_no_deque(ends: tuple[End, End]) -> None:
    """Issue 16: a link lives as long as its device's connection; its Events and
    Queue held six deques of waiters (~0.8 KB each) per connected device, and
    then its two queues a deque each (a 64-slot block even when empty)."""
    import collections
    import gc

    server, _ = ends
    held = list(vars(server.link).values())
    deques = [v for v in held if isinstance(v, collections.deque)]
    for value in held:  # and one level down: an Event's or a Queue's own deques
        deques += [o for o in gc.get_referents(value) if isinstance(o, collections.deque)]
    assert deques == []


async def test_a_link_at_rest_keeps_no_writer_task(ends: tuple[End, End]) -> None:
    """Issue 16: the writer runs while something is queued, and only then; at
    rest (a server's links nearly always) no task waits for work. Whatever is
    queued later still goes out, in order, and a stalled network keeps the
    writer until its queue is sent."""
    server, agent = ends

    def writers() -> list[asyncio.Task[Any]]:
        return [
            t
            for t in asyncio.all_tasks()
            if t.get_coro().__qualname__ == "Link._write_loop"  # type: ignore[union-attr]
        ]

    for round_ in range(3):
        await server.link.send(Heartbeat(applied_generation=round_))
        assert await asyncio.wait_for(agent.messages.get(), WAIT) == Heartbeat(
            applied_generation=round_
        )
        await until(lambda: server.link._writer is None, "the writer to end")
        assert writers() == []
    server.pipe.gate.clear()  # a stalled network: the writer waits with its queue
    for n in (7, 8):
        await server.link.send(Heartbeat(applied_generation=n))
    await asyncio.sleep(0.02)
    assert len(writers()) == 1 and server.link._writer is not None
    server.pipe.gate.set()
    got = [await asyncio.wait_for(agent.messages.get(), WAIT) for _ in range(2)]
    assert got == [Heartbeat(applied_generation=7), Heartbeat(applied_generation=8)]
    await until(lambda: not writers(), "the writer to end")


async def test_a_link_waiting_for_the_next_frame_holds_no_previous_one(
    ends: tuple[End, End],
) -> None:
    """Issue 16: the reader waits for the next frame for as long as the
    connection lasts; on a server that is one per connected device, and the
    last frame and its decoded message (a heartbeat) stayed in its locals."""
    server, agent = ends
    await agent.link.send(Heartbeat(applied_generation=3))
    assert await asyncio.wait_for(server.messages.get(), WAIT) == Heartbeat(applied_generation=3)
    await asyncio.sleep(0.01)  # the reader is back at its receive
    assert server.task is not None
    chain: list[Any] = []
    awaited: Any = server.task.get_coro()
    while hasattr(awaited, "cr_frame"):
        chain.append(awaited)
        awaited = awaited.cr_await
    reader = next(c for c in chain if c.cr_code.co_name == "_read_loop")
    assert {"frame", "message"} & set(reader.cr_frame.f_locals) == set()
