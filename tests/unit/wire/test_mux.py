"""The stream multiplexer, with two muxes wired back to back (no network)."""

from __future__ import annotations

import asyncio

import pytest

from edgefleet.wire.mux import (
    BULK_FRAME,
    MAX_FRAME,
    Mux,
    Stream,
    StreamRefused,
    StreamReset,
)


def pair(window: int = 64 * 1024) -> tuple[Mux, Mux, list[Stream]]:
    accepted: list[Stream] = []
    queue_ab: asyncio.Queue[bytes] = asyncio.Queue()
    queue_ba: asyncio.Queue[bytes] = asyncio.Queue()

    async def accept(stream: Stream) -> None:
        accepted.append(stream)
        if stream.header.get("refuse"):
            await stream.refuse("no such service")
            return
        await stream.accept({"ok": True})
        if stream.header.get("echo"):
            while (chunk := await stream.recv()) is not None:
                await stream.send(chunk)
            await stream.close()
        else:
            await asyncio.Event().wait()

    a = Mux(queue_ab.put, odd=True, initial_window=window)
    b = Mux(queue_ba.put, odd=False, accept=accept, initial_window=window)

    async def pump(source: asyncio.Queue[bytes], target: Mux) -> None:
        while True:
            target.feed(await source.get())

    loop = asyncio.get_running_loop()
    a._pumps = [loop.create_task(pump(queue_ab, b)), loop.create_task(pump(queue_ba, a))]  # type: ignore[attr-defined]
    return a, b, accepted


async def test_echo_roundtrip_keeps_message_boundaries() -> None:
    a, _, _ = pair()
    stream = await a.open({"echo": True})
    assert await stream.wait_accepted(2) == {"ok": True}
    for message in (b"one", b"two", b"x" * 1000):
        await stream.send(message)
        assert await stream.recv() == message
    await stream.close()
    assert await stream.recv() is None


async def test_refused_open_raises_with_reason() -> None:
    a, _, _ = pair()
    stream = await a.open({"refuse": True})
    with pytest.raises(StreamRefused, match="no such service"):
        await stream.wait_accepted(2)


async def test_large_transfer_is_flow_controlled_and_intact() -> None:
    a, _, _ = pair(window=32 * 1024)
    stream = await a.open({"echo": True})
    await stream.wait_accepted(2)
    payload = bytes(range(256)) * 4096  # 1 MiB
    received = bytearray()

    async def reader() -> None:
        while len(received) < len(payload):
            chunk = await stream.recv()
            assert chunk is not None
            assert len(chunk) <= MAX_FRAME
            received.extend(chunk)

    task = asyncio.create_task(reader())
    await stream.send(payload)
    await asyncio.wait_for(task, 10)
    assert bytes(received) == payload


async def test_a_widened_stream_lets_the_peer_send_ahead_in_bulk_frames() -> None:
    """The receiver grants more than the initial window before the acceptor has
    answered; the sender (its mux unchanged: credit is all it knows) then has
    the whole widened window in flight, in frames up to BULK_FRAME."""
    a, _, accepted = pair(window=64 * 1024)
    stream = await a.open({})  # the acceptor never reads, nor sends
    await stream.widen(1024 * 1024)
    await stream.wait_accepted(2)
    sender = accepted[0]
    payload = b"y" * (1024 * 1024)
    await asyncio.wait_for(sender.send(payload, frame_size=BULK_FRAME), 2)  # no credit wait
    chunks = []
    while sum(map(len, chunks)) < len(payload):
        chunks.append(await asyncio.wait_for(stream.recv(), 2))
    assert b"".join(chunks) == payload
    assert max(map(len, chunks)) == BULK_FRAME
    # more than the widened window in flight is still a violation
    blocked = asyncio.create_task(sender.send(payload + b"z", frame_size=BULK_FRAME))
    await asyncio.sleep(0.1)
    assert not blocked.done()
    blocked.cancel()


async def test_a_stalled_stream_does_not_block_others() -> None:
    a, _, _accepted = pair(window=16 * 1024)
    stalled = await a.open({})  # the acceptor never reads
    await stalled.wait_accepted(2)
    blocked = asyncio.create_task(stalled.send(b"x" * 100_000))
    await asyncio.sleep(0.1)
    assert not blocked.done()  # out of window credit: waits, does not buffer unboundedly
    other = await a.open({"echo": True})
    await other.wait_accepted(2)
    await other.send(b"still flowing")
    assert await asyncio.wait_for(other.recv(), 2) == b"still flowing"
    blocked.cancel()


async def test_closing_the_mux_resets_streams() -> None:
    a, _, _ = pair()
    stream = await a.open({"echo": True})
    await stream.wait_accepted(2)
    a.close("connection lost")
    with pytest.raises(StreamReset, match="connection lost"):
        await stream.recv()
    with pytest.raises(StreamRefused):
        await a.open({})


async def test_peer_exceeding_window_is_reset() -> None:
    frames: list[bytes] = []

    async def send(frame: bytes) -> None:
        frames.append(frame)

    async def accept(stream: Stream) -> None:
        await asyncio.Event().wait()

    mux = Mux(send, odd=False, accept=accept, initial_window=1024)
    from edgefleet.wire.mux import DATA, OPEN, frame

    mux.feed(frame(OPEN, 1, b"{}"))
    await asyncio.sleep(0)
    stream = mux._streams[1]
    mux.feed(frame(DATA, 1, b"x" * 2000))
    with pytest.raises(StreamReset, match="window"):
        await stream.recv()


async def test_a_widened_window_still_bounds_what_the_peer_may_send() -> None:
    frames: list[bytes] = []

    async def send(frame: bytes) -> None:
        frames.append(frame)

    mux = Mux(send, odd=True, initial_window=1024)
    from edgefleet.wire.mux import DATA, WINDOW, frame

    stream = await mux.open({})
    await stream.widen(4096)
    assert frames[-1] == frame(WINDOW, stream.id, (3072).to_bytes(4, "big"))
    await stream.widen(2048)  # narrowing is no grant
    assert frames[-1][0] == WINDOW and len(frames) == 2
    mux.feed(frame(DATA, stream.id, b"x" * 4096))
    assert await stream.recv() == b"x" * 4096
    mux.feed(frame(DATA, stream.id, b"x" * 4097))
    with pytest.raises(StreamReset, match="window"):
        await stream.recv()


async def test_a_reset_after_the_carrier_is_gone_is_quiet_but_a_broken_sender_is_not() -> None:
    """Resetting a stream whose carrier is gone (SendFailed) only resets our end;
    any other failure of the sender is a bug and reaches the caller."""
    from edgefleet.wire.mux import SendFailed

    async def gone(_frame: bytes) -> None:
        raise SendFailed("connection lost")

    async def broken(_frame: bytes) -> None:
        raise RuntimeError("bug in the sender")

    quiet = Mux(gone, odd=True)
    stream = Stream(quiet, 1, {})
    await stream.reset("giving up")
    with pytest.raises(StreamReset, match="giving up"):
        await stream.recv()

    loud = Mux(broken, odd=True)
    with pytest.raises(RuntimeError, match="bug in the sender"):
        await Stream(loud, 1, {}).reset("giving up")
