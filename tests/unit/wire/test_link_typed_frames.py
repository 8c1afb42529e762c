"""The agent link routes typed binary frames (federated messages, protocol 3)
to their handler, never to the stream multiplexer, and sends them in order with
the control messages."""

from __future__ import annotations

import asyncio

from edgefleet.fed import codec
from edgefleet.fed.messages import MaskedInput
from edgefleet.wire.link import TYPED_FRAME, Link, TransportClosed
from edgefleet.wire.messages import Heartbeat, Message, encode


class QueueTransport:
    def __init__(self, inbound: list[str | bytes]) -> None:
        self.inbound = list(inbound)
        self.sent: list[str | bytes] = []

    async def send_text(self, data: str) -> None:
        self.sent.append(data)

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    async def receive(self) -> str | bytes:
        if not self.inbound:
            await asyncio.sleep(0.05)  # let the writer drain, then end
            raise TransportClosed(1000, "done")
        return self.inbound.pop(0)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        return None


def test_the_codec_and_the_link_agree_on_the_magic() -> None:
    assert codec.MAGIC == TYPED_FRAME


async def test_typed_frames_reach_their_handler_and_go_out_in_order() -> None:
    typed = codec.encode_frame(MaskedInput(computation_id="c", sender="a", vector=bytes(16)))
    stream_frame = bytes([3]) + (7).to_bytes(4, "big") + b"data"  # DATA for no stream
    transport = QueueTransport([typed, stream_frame, encode(Heartbeat())])
    frames: list[bytes] = []
    messages: list[Message] = []

    async def on_message(message: Message) -> None:
        messages.append(message)

    async def on_frame(data: bytes) -> None:
        frames.append(data)

    link = Link(transport, odd=True, on_message=on_message, on_frame=on_frame)
    await link.send(Heartbeat())
    await link.send_frame(typed)
    await link.send(Heartbeat())
    await link.run()
    assert frames == [typed]  # the stream frame went to the mux (and was dropped there)
    assert [type(m) for m in messages] == [Heartbeat]
    assert [type(item) for item in transport.sent] == [str, bytes, str]
    assert transport.sent[1] == typed


async def test_without_a_handler_typed_frames_are_dropped() -> None:
    typed = codec.encode_frame(MaskedInput(computation_id="c", sender="a", vector=bytes(16)))
    messages: list[Message] = []

    async def on_message(message: Message) -> None:
        messages.append(message)

    link = Link(QueueTransport([typed, encode(Heartbeat())]), odd=True, on_message=on_message)
    await link.run()
    assert [type(m) for m in messages] == [Heartbeat]
