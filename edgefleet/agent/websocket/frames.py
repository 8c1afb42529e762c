"""RFC 6455 frames, as a client writes and reads them: no I/O here.

A client masks every frame it sends (section 5.3) and refuses masked frames
from the server; no extension is negotiated, so the RSV bits must be zero.
Control frames (close, ping, pong) are at most 125 bytes and never
fragmented (5.5). :func:`parse_header` reads the 2..10 header bytes of a
server frame; the caller reads the payload it announces.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import logging
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CONTINUATION, TEXT, BINARY = 0x0, 0x1, 0x2
CLOSE, PING, PONG = 0x8, 0x9, 0xA
DATA_OPCODES = frozenset({CONTINUATION, TEXT, BINARY})
CONTROL_OPCODES = frozenset({CLOSE, PING, PONG})

# Close codes this side sends (7.4.1).
NORMAL, GOING_AWAY, PROTOCOL_ERROR = 1000, 1001, 1002
NO_STATUS, ABNORMAL, INVALID_DATA, TOO_BIG, INTERNAL = 1005, 1006, 1007, 1009, 1011
# Codes that must never appear in a close frame on the wire (7.4.1).
_RESERVED = frozenset({1004, 1005, 1006, 1015})


class FrameError(Exception):
    """The server broke RFC 6455; ``code`` is the close code to answer with."""

    def __init__(self, message: str, code: int = PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Header:
    fin: bool
    opcode: int
    length: int  # of the payload still to read


def encode(opcode: int, payload: bytes, *, fin: bool = True) -> bytearray:
    """One masked frame (a client's frames are always masked), built in place."""
    length = len(payload)
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        frame = bytearray(struct.pack("!BB", first, 0x80 | length))
    elif length < 1 << 16:
        frame = bytearray(struct.pack("!BBH", first, 0x80 | 126, length))
    else:
        frame = bytearray(struct.pack("!BBQ", first, 0x80 | 127, length))
    key = os.urandom(4)
    frame += key
    if length >= _C_MASK_FROM and (apply_mask := _c_apply_mask()) is not None:
        frame += apply_mask(payload, key)
        return frame
    start = len(frame)
    frame += payload
    _mask_from(frame, start, key)
    return frame


# Past this size a frame is masked in C when websockets' speedups module is
# there (it ships with the CLI's websockets): ~14 GB/s against ~0.8 GB/s for
# the strided translate below, and masking was two thirds of the agent's CPU
# on a proxied download. Small frames never load it, so an idle agent doesn't.
_C_MASK_FROM = 16 * 1024


@functools.cache
def _c_apply_mask() -> Callable[[bytes, bytes], bytes] | None:
    """websockets' C ``apply_mask``, loaded from its file alone: importing it as
    ``websockets.speedups`` would run the websockets package (~4.6 MB of RSS
    for the agent, which uses none of it)."""
    spec = importlib.util.find_spec("websockets")
    if spec is None or spec.origin is None:
        return None
    found = sorted(Path(spec.origin).parent.glob("speedups.*.so"))
    if not found:
        return None
    name = "edgefleet.agent.websocket.speedups"  # PyInit_speedups
    loader = importlib.machinery.ExtensionFileLoader(name, str(found[0]))
    module_spec = importlib.util.spec_from_file_location(name, found[0], loader=loader)
    if module_spec is None:
        return None
    try:
        module = importlib.util.module_from_spec(module_spec)
    except ImportError:
        log.info("websocket frames masked in Python: %s failed to load", found[0])
        return None
    apply_mask: Callable[[bytes, bytes], bytes] = module.apply_mask
    return apply_mask


def mask(payload: bytes, key: bytes) -> bytearray:
    """``payload`` XOR the 4-byte key repeated (5.3)."""
    out = bytearray(payload)
    _mask_from(out, 0, key)
    return out


def _mask_from(buffer: bytearray, start: int, key: bytes) -> None:
    """Mask ``buffer[start:]`` in place. Each key byte applies to every fourth
    byte: one C-speed ``translate`` of that stride with the byte's XOR table
    (hundreds of MB/s of CPU, several times a big-integer XOR). The connection
    carries proxied downloads, so this is on a hot path."""
    for offset, byte in enumerate(key):
        at = start + offset
        buffer[at::4] = buffer[at::4].translate(_xor_table(byte))


@functools.cache
def _xor_table(byte: int) -> bytes:
    """``translate`` table XOR-ing with ``byte`` (at most 256 of 256 bytes)."""
    return bytes(value ^ byte for value in range(256))


def header_size(second: int) -> int:
    """Bytes of extended length after the first two header bytes."""
    size = second & 0x7F
    return 2 if size == 126 else 8 if size == 127 else 0


def parse_header(first_two: bytes, extended: bytes) -> Header:
    """Check a server frame's header: unmasked, no RSV bits, a known opcode, and
    control frames final and short."""
    first, second = first_two[0], first_two[1]
    if first & 0x70:
        raise FrameError("reserved bits set (no extension was negotiated)")
    if second & 0x80:
        raise FrameError("the server masked a frame")
    opcode = first & 0x0F
    if opcode not in DATA_OPCODES and opcode not in CONTROL_OPCODES:
        raise FrameError(f"unknown opcode {opcode:#x}")
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", extended)
    elif length == 127:
        (length,) = struct.unpack("!Q", extended)
        if length >> 63:
            raise FrameError("payload length with the high bit set")
    fin = bool(first & 0x80)
    if opcode in CONTROL_OPCODES and (not fin or length > 125):
        raise FrameError("a control frame fragmented or longer than 125 bytes")
    return Header(fin=fin, opcode=opcode, length=length)


def close_payload(code: int, reason: str) -> bytes:
    """Body of a close frame: the code, then the reason cut to fit 123 bytes."""
    if code in _RESERVED:
        return b""
    data = reason.encode()[:123]
    return struct.pack("!H", code) + data.decode(errors="ignore").encode()


def parse_close(payload: bytes) -> tuple[int, str]:
    """Code and reason of a close frame from the server (1005 when it has none)."""
    if not payload:
        return NO_STATUS, ""
    if len(payload) == 1:
        raise FrameError("a close frame with a one-byte body")
    (code,) = struct.unpack("!H", payload[:2])
    if code < 1000 or code >= 5000 or code in _RESERVED or 1016 <= code < 3000:
        raise FrameError(f"close code {code} is not allowed on the wire")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError as exc:
        raise FrameError("a close reason that is not UTF-8", INVALID_DATA) from exc
    return code, reason
