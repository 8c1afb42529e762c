"""A scripted WebSocket server for the client's tests: it answers the upgrade,
then plays raw frames the real server never sends (fragments, pings, masked or
oversized frames, bad UTF-8) and reads back, unmasked, what the client wrote."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from edgefleet.agent.websocket.handshake import accept_key

Script = Callable[["PeerSide"], Awaitable[None]]


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = False) -> bytes:
    """One server frame (unmasked unless ``mask``: a protocol error from a server)."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        head = bytes([first, size | (0x80 if mask else 0)])
    elif size < 1 << 16:
        head = bytes([first, 126 | (0x80 if mask else 0)]) + struct.pack("!H", size)
    else:
        head = bytes([first, 127 | (0x80 if mask else 0)]) + struct.pack("!Q", size)
    return head + (b"\0\0\0\0" if mask else b"") + payload


class PeerSide:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, *raw: bytes) -> None:
        self.writer.write(b"".join(raw))
        await self.writer.drain()

    async def read(self) -> tuple[int, bytes]:
        """The client's next frame: (opcode, unmasked payload); it must be masked."""
        first, second = await self.reader.readexactly(2)
        assert second & 0x80, "the client sent an unmasked frame"
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        key = await self.reader.readexactly(4)
        body = await self.reader.readexactly(size)
        return first & 0x0F, bytes(b ^ key[i % 4] for i, b in enumerate(body))

    async def read_close(self) -> tuple[int, str]:
        opcode, body = await self.read()
        assert opcode == 0x8, f"expected a close frame, got opcode {opcode}"
        return struct.unpack("!H", body[:2])[0], body[2:].decode()


class Peer:
    def __init__(self, url: str, finished: asyncio.Future[None]) -> None:
        self.url = url
        self._finished = finished

    async def outcome(self, timeout: float = 10) -> None:
        """Wait for the script to end; its failed assertions are raised here."""
        await asyncio.wait_for(asyncio.shield(self._finished), timeout)


@asynccontextmanager
async def peer(
    script: Script,
    *,
    answer: bytes | None = None,
    requests: list[bytes] | None = None,
    with_101: bytes = b"",
) -> AsyncIterator[Peer]:
    """Serve ``script`` after a correct 101 (or ``answer`` as the whole reply) to
    the first connection; ``with_101``: frames written in the same call as the
    101. Every request head is kept in ``requests``."""
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if requests is not None:
                requests.append(head)
            if answer is not None:
                writer.write(answer)
                await writer.drain()
                return
            key = next(
                line.split(b":", 1)[1].strip().decode()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\n"
                + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode()
                + with_101
            )
            await script(PeerSide(reader, writer))
        except (Exception, asyncio.CancelledError) as exc:
            if not finished.done():
                finished.set_exception(exc)  # raised in the test by Peer.outcome
        else:
            if not finished.done():
                finished.set_result(None)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield Peer(f"ws://127.0.0.1:{port}/api/v1/agent/connect", finished)
    finally:
        server.close()
        if not finished.done():
            finished.cancel()
