"""The shapes of the engine's long answers, parsed without I/O.

- **Multiplexed output** (logs and execs of a container without a TTY): frames
  of an 8-byte header, ``[stream, 0, 0, 0, size as 4 bytes big-endian]``, then
  ``size`` bytes; stream 0 is stdin (echoed), 1 stdout, 2 stderr. A frame may be
  split across reads, and a read may hold several frames: :class:`Demuxer` keeps
  what is incomplete for the next feed. With a TTY the output is raw bytes.
- **Progress** (pull, push, build): JSON objects one after the other, usually
  one per line, split anywhere by the transport: :class:`JsonItems`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Iterator
from typing import Any

STDOUT, STDERR = 1, 2
HEADER = struct.Struct(">BxxxI")


class Demuxer:
    """Frames of multiplexed output, fed as the bytes arrive."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The frames completed by ``data``: (1 stdout or 2 stderr, payload)."""
        self._buffer += data
        frames: list[tuple[int, bytes]] = []
        while len(self._buffer) >= HEADER.size:
            kind, size = HEADER.unpack_from(self._buffer)
            end = HEADER.size + size
            if len(self._buffer) < end:
                break
            payload = bytes(self._buffer[HEADER.size : end])
            del self._buffer[:end]
            frames.append((STDERR if kind == STDERR else STDOUT, payload))
        return frames

    @property
    def pending(self) -> int:
        """Bytes of a frame not complete yet (what a cut stream lost)."""
        return len(self._buffer)


def demux(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Every frame of a multiplexed stream, in order."""
    demuxer = Demuxer()
    for chunk in chunks:
        yield from demuxer.feed(chunk)


def collect(chunks: Iterable[bytes]) -> tuple[bytes, bytes]:
    """A finished multiplexed stream as (stdout, stderr)."""
    out, err = bytearray(), bytearray()
    for kind, payload in demux(chunks):
        (err if kind == STDERR else out).extend(payload)
    return bytes(out), bytes(err)


class JsonItems:
    """JSON values, fed as the bytes arrive; whitespace between them is skipped."""

    def __init__(self) -> None:
        self._text = ""
        self._pending = b""
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> list[Any]:
        raw = self._pending + data
        try:
            self._text += raw.decode()
            self._pending = b""
        except UnicodeDecodeError as exc:  # a character cut in two: keep its start
            self._text += raw[: exc.start].decode()
            self._pending = raw[exc.start :]
        found: list[Any] = []
        while True:
            text = self._text.lstrip()
            if not text:
                self._text = ""
                return found
            try:
                value, end = self._decoder.raw_decode(text)
            except ValueError:  # incomplete: wait for more
                self._text = text
                return found
            found.append(value)
            self._text = text[end:]

    @property
    def rest(self) -> str:
        """What never became a value (a stream cut in the middle of one)."""
        return self._text.strip()


def json_items(chunks: Iterable[bytes]) -> Iterator[Any]:
    """Every JSON value of a progress stream; what is left unparsed at its end
    comes as ``{"error": ...}`` (an engine that cut its answer)."""
    items = JsonItems()
    for chunk in chunks:
        yield from items.feed(chunk)
    if items.rest:
        yield {"error": f"the engine's progress ended in the middle of: {items.rest[:200]}"}
