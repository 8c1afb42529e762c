"""What every :class:`~edgefleet.server.bus.base.Bus` must do, run against each one.

The contract is the one ``bus/base.py`` states: NATS subject rules, fan-out to
every subscription and to one member of each queue group, delivery in order
per subscription with one handler call at a time, request/reply with
``NoResponders`` and ``BusTimeout``, and nothing delivered once a subscription
or the bus is closed. ``memory`` runs in-process; ``nats`` runs against a real
``nats-server`` on a free loopback port, started once for this module.

Two replicas are two buses on one backplane: for NATS two connections, for
memory the same object (a single process has one bus). "Nothing else arrived"
is checked with a marker message sent after the ones that must not arrive:
every bus delivers in order, so once the marker is in, anything else would
already be.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from edgefleet.server.bus.base import (
    BUSES,
    Bus,
    BusError,
    BusMessage,
    BusTimeout,
    NoResponders,
    Subscription,
    create_bus,
    subject_matches,
)
from tests.support.cluster import NatsProc

WAIT = 5.0


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc = NatsProc(Path(tmp_path_factory.mktemp("nats")))
    proc.start()
    try:
        yield proc.url
    finally:
        proc.stop()


@pytest.fixture(params=["memory", "nats"])
def bus_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory"
    url: str = request.getfixturevalue("nats_url")
    return url


class Backplane:
    """Buses of several replicas sharing one backplane; all closed at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.buses: list[Bus] = []

    async def connect(self) -> Bus:
        if self.url == "memory" and self.buses:
            return self.buses[0]
        bus = create_bus(self.url)
        await bus.start()
        self.buses.append(bus)
        return bus

    async def close(self) -> None:
        for bus in self.buses:
            await bus.close()


@pytest.fixture
async def backplane(bus_url: str) -> AsyncIterator[Backplane]:
    plane = Backplane(bus_url)
    try:
        yield plane
    finally:
        await plane.close()


@pytest.fixture
async def bus(backplane: Backplane) -> Bus:
    return await backplane.connect()


@pytest.fixture
async def peer(backplane: Backplane, bus: Bus) -> Bus:
    """Another replica's bus (the same one for memory)."""
    return await backplane.connect()


class Inbox:
    """A handler that keeps what it gets, in order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[BusMessage] = asyncio.Queue()
        self.seen: list[BusMessage] = []

    async def __call__(self, message: BusMessage) -> None:
        self.seen.append(message)
        await self.queue.put(message)

    async def get(self) -> BusMessage:
        return await asyncio.wait_for(self.queue.get(), WAIT)

    async def take(self, n: int) -> list[BusMessage]:
        return [await self.get() for _ in range(n)]


async def synced(*buses: Bus) -> None:
    """Return once each bus's earlier subscribes and unsubscribes are in force
    on the backplane. NATS sends them without waiting, and only one connection's
    traffic is ordered; so each bus asks itself a question and waits for the
    answer, which the backplane handles after everything that bus sent before."""
    for bus in buses:
        subject = f"t.sync.{uuid.uuid4().hex}"

        async def answer(message: BusMessage, bus: Bus = bus) -> None:
            assert message.reply is not None
            await bus.publish(message.reply, b"")

        sub = await bus.subscribe(subject, answer)
        await bus.request(subject, b"", timeout=WAIT)
        await sub.unsubscribe()


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def settle(publisher: Bus, receiver: Bus, subject: str = "t.marker") -> None:
    """Wait until everything ``publisher`` sent so far has reached ``receiver``."""
    marker = Inbox()
    sub = await receiver.subscribe(subject, marker)
    await synced(receiver)
    await publisher.publish(subject, b"marker")
    await marker.get()
    await sub.unsubscribe()


async def echo(bus: Bus, subject: str, prefix: bytes = b"re:") -> None:
    async def answer(message: BusMessage) -> None:
        assert message.reply is not None
        await bus.publish(message.reply, prefix + message.data)

    await bus.subscribe(subject, answer)
    await synced(bus)


# -- subjects -------------------------------------------------------------------------

SUBJECTS = [
    ("a.b.c", "a.b.c", True),
    ("a.b.c", "a.b", False),
    ("a.b", "a.b.c", False),
    ("a.b.c", "a.b.d", False),
    ("a.*.c", "a.b.c", True),
    ("a.*.c", "a.b.d", False),
    ("a.*", "a.b.c", False),
    ("a.*.*", "a.b.c", True),
    ("*.b", "a.b", True),
    ("*", "a.b", False),
    ("a.>", "a.b", True),
    ("a.>", "a.b.c.d", True),
    ("a.>", "a", False),
    ("a.*.>", "a.b", False),
    ("a.*.>", "a.b.c", True),
    (">", "a", True),
    (">", "a.b.c", True),
]


@pytest.mark.parametrize(("pattern", "subject", "expected"), SUBJECTS)
def test_subject_matches_follows_nats_rules(pattern: str, subject: str, expected: bool) -> None:
    assert subject_matches(pattern, subject) is expected


async def test_every_bus_matches_subjects_like_subject_matches(bus: Bus, peer: Bus) -> None:
    """One table, two judges: the pure function and the bus itself must agree."""
    for pattern, subject, expected in SUBJECTS:
        inbox = Inbox()
        sub = await bus.subscribe(pattern, inbox)
        await synced(bus)
        await peer.publish(subject, b"probe")
        await peer.publish(pattern.replace("*", "m").replace(">", "m"), b"marker")
        first = await inbox.get()
        while first.subject.startswith(("t.sync.", "_INBOX.")):  # wide patterns see synced()
            first = await inbox.get()
        assert (first.data == b"probe") is expected, (pattern, subject)
        if expected:
            assert first.subject == subject
            assert (await inbox.get()).data == b"marker"
        await sub.unsubscribe()


def test_the_factory_picks_the_implementation_by_url_scheme() -> None:
    assert type(create_bus("memory")).__name__ == "MemoryBus"
    assert type(create_bus("nats://127.0.0.1:4222")).__name__ == "NatsBus"
    assert set(BUSES) >= {"memory", "nats"}


# -- publish / subscribe --------------------------------------------------------------


async def test_a_message_reaches_every_subscription_with_its_subject_and_bytes(
    bus: Bus, peer: Bus
) -> None:
    inboxes = [Inbox() for _ in range(3)]
    for index, inbox in enumerate(inboxes):
        await (bus if index % 2 else peer).subscribe("ev.project.7", inbox)
    await synced(bus, peer)
    await bus.publish("ev.project.7", b"\x00hello\xff")
    for inbox in inboxes:
        message = await inbox.get()
        assert (message.subject, message.data, message.reply) == (
            "ev.project.7",
            b"\x00hello\xff",
            None,
        )
    await settle(bus, peer)
    assert [len(inbox.seen) for inbox in inboxes] == [1, 1, 1]


async def test_the_reply_subject_travels_with_the_message(bus: Bus, peer: Bus) -> None:
    inbox = Inbox()
    await peer.subscribe("cmd.x", inbox)
    await synced(peer)
    await bus.publish("cmd.x", b"go", reply="answers.42")
    assert (await inbox.get()).reply == "answers.42"


async def test_empty_and_large_payloads_arrive_intact(bus: Bus, peer: Bus) -> None:
    inbox = Inbox()
    await peer.subscribe("blob", inbox)
    await synced(peer)
    big = os.urandom(512 * 1024)
    await bus.publish("blob", b"")
    await bus.publish("blob", big)
    assert [m.data for m in await inbox.take(2)] == [b"", big]


async def test_delivery_is_in_order_per_subscription(bus: Bus, peer: Bus) -> None:
    inbox = Inbox()
    await peer.subscribe("seq.>", inbox)
    await synced(peer)
    for i in range(300):
        await bus.publish(f"seq.{i % 3}", str(i).encode())
    assert [int(m.data) for m in await inbox.take(300)] == list(range(300))


async def test_handlers_of_one_subscription_run_one_at_a_time(bus: Bus, peer: Bus) -> None:
    running = 0
    most = 0
    done: list[int] = []

    async def slow(message: BusMessage) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.005)
        running -= 1
        done.append(int(message.data))

    await peer.subscribe("serial", slow)
    await synced(peer)
    for i in range(20):
        await bus.publish("serial", str(i).encode())
    await until(lambda: len(done) >= 20, "twenty messages")
    assert done == list(range(20))
    assert most == 1


async def test_a_slow_subscriber_delays_no_other_and_loses_nothing(bus: Bus, peer: Bus) -> None:
    gate = asyncio.Event()
    slow_seen: list[bytes] = []

    async def slow(message: BusMessage) -> None:
        await gate.wait()
        slow_seen.append(message.data)

    fast = Inbox()
    await peer.subscribe("load", slow)
    await peer.subscribe("load", fast)
    await synced(peer)
    sent = [str(i).encode() for i in range(50)]
    for data in sent:
        await bus.publish("load", data)
    assert [m.data for m in await fast.take(50)] == sent  # while the slow one is stuck
    assert slow_seen == []
    gate.set()
    await until(lambda: len(slow_seen) >= 50, "the slow subscriber to catch up")
    assert slow_seen == sent


async def test_a_failing_handler_keeps_its_subscription(bus: Bus, peer: Bus) -> None:
    seen: list[bytes] = []

    async def flaky(message: BusMessage) -> None:
        seen.append(message.data)
        if message.data == b"bad":
            raise ValueError("handler bug")

    await peer.subscribe("flaky", flaky)
    await synced(peer)
    for data in (b"one", b"bad", b"two"):
        await bus.publish("flaky", data)
    await until(lambda: len(seen) >= 3, "three messages")
    assert seen == [b"one", b"bad", b"two"]


async def test_after_unsubscribe_nothing_more_is_delivered(bus: Bus, peer: Bus) -> None:
    inbox = Inbox()
    kept = Inbox()
    sub = await peer.subscribe("news", inbox)
    await peer.subscribe("news", kept)
    await synced(peer)
    await bus.publish("news", b"first")
    assert (await inbox.get()).data == b"first"
    await sub.unsubscribe()
    await synced(peer)
    for _ in range(5):
        await bus.publish("news", b"later")
    assert len(await kept.take(6)) == 6
    await settle(bus, peer, "news")
    assert [m.data for m in inbox.seen] == [b"first"]


async def test_a_handler_may_unsubscribe_its_own_subscription(bus: Bus, peer: Bus) -> None:
    seen: list[bytes] = []
    subs: list[Subscription] = []

    async def once(message: BusMessage) -> None:
        seen.append(message.data)
        await subs[0].unsubscribe()

    subs.append(await peer.subscribe("once", once))
    await synced(peer)
    await bus.publish("once", b"1")
    await until(lambda: bool(seen), "the first message")
    await synced(peer)
    await bus.publish("once", b"2")
    await settle(bus, peer, "once")
    assert seen == [b"1"]


async def test_many_exact_subscriptions_each_get_only_their_own(bus: Bus, peer: Bus) -> None:
    """A replica holds one subscription per connected device."""
    inboxes = {f"dev.{i}": Inbox() for i in range(300)}
    for subject, inbox in inboxes.items():
        await peer.subscribe(subject, inbox)
    await synced(peer)
    for subject in inboxes:
        await bus.publish(subject, subject.encode())
    for subject, inbox in inboxes.items():
        assert (await inbox.get()).data == subject.encode()
    await settle(bus, peer)
    assert all(len(inbox.seen) == 1 for inbox in inboxes.values())


# -- queue groups ---------------------------------------------------------------------


async def test_a_queue_group_gets_each_message_once_and_plain_subscribers_all(
    bus: Bus, peer: Bus
) -> None:
    members = [Inbox(), Inbox(), Inbox()]
    for index, member in enumerate(members):
        await (bus if index % 2 else peer).subscribe("work", member, queue="workers")
    everyone = Inbox()
    await peer.subscribe("work", everyone)
    await synced(bus, peer)
    sent = [str(i).encode() for i in range(60)]
    for data in sent:
        await bus.publish("work", data)
    assert [m.data for m in await everyone.take(60)] == sent
    await until(lambda: sum(len(m.seen) for m in members) >= 60, "the group to get 60")
    await settle(bus, peer)
    got = [m.data for member in members for m in member.seen]
    assert sorted(got) == sorted(sent)  # each exactly once across the group
    for member in members:  # and in order within each member
        mine = [m.data for m in member.seen]
        assert mine == sorted(mine, key=int)


async def test_two_queue_groups_each_get_every_message(bus: Bus, peer: Bus) -> None:
    a, b = Inbox(), Inbox()
    await peer.subscribe("jobs.*", a, queue="scheduler")
    await peer.subscribe("jobs.*", b, queue="auditor")
    await synced(peer)
    for i in range(10):
        await bus.publish(f"jobs.{i}", b"x")
    assert len(await a.take(10)) == 10
    assert len(await b.take(10)) == 10


# -- request / reply ------------------------------------------------------------------


async def test_request_gets_the_reply(bus: Bus, peer: Bus) -> None:
    await echo(peer, "svc.echo")
    assert await bus.request("svc.echo", b"ping", timeout=WAIT) == b"re:ping"


async def test_a_wildcard_responder_answers_a_request(bus: Bus, peer: Bus) -> None:
    async def answer(message: BusMessage) -> None:
        assert message.reply is not None
        await peer.publish(message.reply, message.subject.encode())

    await peer.subscribe("dev.*.cmd", answer)
    await synced(peer)
    assert await bus.request("dev.d42.cmd", b"", timeout=WAIT) == b"dev.d42.cmd"


async def test_concurrent_requests_each_get_their_own_reply(bus: Bus, peer: Bus) -> None:
    async def answer(message: BusMessage) -> None:
        assert message.reply is not None
        await asyncio.sleep(0.001 * (int(message.data) % 5))
        await peer.publish(message.reply, b"re:" + message.data)

    await peer.subscribe("svc.slow", answer, queue="svc")
    await synced(peer)
    replies = await asyncio.gather(
        *(bus.request("svc.slow", str(i).encode(), timeout=WAIT) for i in range(30))
    )
    assert replies == [f"re:{i}".encode() for i in range(30)]


async def test_large_requests_and_replies_arrive_intact(bus: Bus, peer: Bus) -> None:
    big = os.urandom(400 * 1024)

    async def answer(message: BusMessage) -> None:
        assert message.reply is not None
        await peer.publish(message.reply, message.data[::-1])

    await peer.subscribe("svc.big", answer)
    await synced(peer)
    assert await bus.request("svc.big", big, timeout=WAIT) == big[::-1]


async def test_a_queue_group_answers_a_request_once(bus: Bus, peer: Bus) -> None:
    calls: list[bytes] = []

    async def answer(message: BusMessage) -> None:
        assert message.reply is not None
        calls.append(message.data)
        await peer.publish(message.reply, b"ok")

    for _ in range(3):
        await peer.subscribe("svc.q", answer, queue="q")
    await synced(peer)
    for i in range(5):
        assert await bus.request("svc.q", str(i).encode(), timeout=WAIT) == b"ok"
    await settle(bus, peer)
    assert calls == [str(i).encode() for i in range(5)]


async def test_nobody_subscribed_fails_fast_with_no_responders(bus: Bus) -> None:
    started = time.monotonic()
    with pytest.raises(NoResponders) as caught:
        await bus.request("dev.offline.cmd", b"x", timeout=WAIT)
    assert time.monotonic() - started < 1.0  # not a timeout in disguise
    assert isinstance(caught.value, BusError)
    assert "dev.offline.cmd" in str(caught.value)


async def test_a_responder_that_stays_silent_raises_bus_timeout(bus: Bus, peer: Bus) -> None:
    silent = Inbox()
    await peer.subscribe("svc.silent", silent)
    await synced(peer)
    started = time.monotonic()
    with pytest.raises(BusTimeout) as caught:
        await bus.request("svc.silent", b"hello?", timeout=0.3)
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 2.0
    assert isinstance(caught.value, BusError)
    assert "svc.silent" in str(caught.value)
    assert (await silent.get()).data == b"hello?"  # it did reach the responder


async def test_a_late_reply_after_a_timeout_goes_nowhere(bus: Bus, peer: Bus) -> None:
    """The caller gave up; its reply inbox is gone and a later request on the
    same subject gets its own answer, not the stale one."""
    release = asyncio.Event()

    async def late(message: BusMessage) -> None:
        assert message.reply is not None
        if message.data == b"first":
            await release.wait()
        await peer.publish(message.reply, message.data)

    await peer.subscribe("svc.late", late, queue="late")
    await peer.subscribe("svc.late", late, queue="late")
    await synced(peer)
    with pytest.raises(BusTimeout):
        await bus.request("svc.late", b"first", timeout=0.2)
    release.set()
    for _ in range(3):
        assert await bus.request("svc.late", b"second", timeout=WAIT) == b"second"


async def test_no_responders_after_the_last_responder_left(bus: Bus) -> None:
    sub_holder = Inbox()
    sub = await bus.subscribe("svc.gone", sub_holder)
    await sub.unsubscribe()
    with pytest.raises(NoResponders):
        await bus.request("svc.gone", b"x", timeout=WAIT)


# -- close ----------------------------------------------------------------------------


async def test_close_ends_delivery_and_leaves_no_task_behind(bus_url: str) -> None:
    before = asyncio.all_tasks()
    plane = Backplane(bus_url)
    bus = await plane.connect()
    inbox = Inbox()
    seen_once: list[bytes] = []
    subs: list[Subscription] = []

    async def once(message: BusMessage) -> None:
        seen_once.append(message.data)
        await subs[0].unsubscribe()

    await bus.subscribe("c.x", inbox)
    subs.append(await bus.subscribe("c.once", once))
    unsubscribed = await bus.subscribe("c.y", inbox)
    await bus.publish("c.x", b"1")
    await bus.publish("c.once", b"1")
    assert (await inbox.get()).data == b"1"
    await unsubscribed.unsubscribe()
    await settle(bus, bus, "c.once")
    assert seen_once == [b"1"]
    await plane.close()
    await asyncio.sleep(0.05)
    left = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert left == set(), [t.get_name() for t in left]
    assert [m.data for m in inbox.seen] == [b"1"]


async def test_unsubscribing_again_or_after_close_never_raises(bus_url: str) -> None:
    """Callers unsubscribe on every way out (a device leaving, a replica stopping)
    without guarding the call: the bus says why it could not, it does not raise."""
    plane = Backplane(bus_url)
    bus = await plane.connect()
    twice = await bus.subscribe("u.twice", Inbox())
    late = await bus.subscribe("u.late", Inbox())
    await twice.unsubscribe()
    await twice.unsubscribe()
    await plane.close()
    await late.unsubscribe()
