"""The frame codec on its own: what a client writes, what it refuses to read."""

from __future__ import annotations

import struct

import pytest

from edgefleet.agent.websocket import frames


def _unmask(frame: bytes | bytearray) -> tuple[int, int, bytes]:
    """(first byte, payload length, payload) of one masked frame."""
    first, second = frame[0], frame[1]
    assert second & 0x80, "a client frame must be masked"
    size, offset = second & 0x7F, 2
    if size == 126:
        (size,), offset = struct.unpack("!H", frame[2:4]), 4
    elif size == 127:
        (size,), offset = struct.unpack("!Q", frame[2:10]), 10
    key, body = frame[offset : offset + 4], frame[offset + 4 :]
    assert len(body) == size
    return first, size, bytes(b ^ key[i % 4] for i, b in enumerate(body))


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70001])
def test_every_length_form_round_trips_masked(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    first, length, body = _unmask(frames.encode(frames.BINARY, payload))
    assert first == 0x80 | frames.BINARY
    assert (length, body) == (size, payload)


def test_large_frames_are_masked_in_c_and_agree_with_the_python_mask() -> None:
    """Past 16 KiB the C mask (websockets' speedups, loaded from its file
    alone) does the work: it must be there in this install, must not bring the
    websockets package in, and must give the bytes the Python mask gives."""
    import subprocess
    import sys

    apply_mask = frames._c_apply_mask()
    assert apply_mask is not None
    probe = (
        "import sys; from edgefleet.agent.websocket import frames; "
        "frames.encode(frames.BINARY, bytes(70000)); assert frames._c_apply_mask(); "
        "print(sorted(m for m in sys.modules if m.startswith('websockets')))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert loaded.stdout.strip() == "[]", loaded.stderr
    payload = bytes(range(251)) * 400 + b"tail"
    key = b"\x9a\x01\xff\x42"
    assert apply_mask(payload, key) == bytes(frames.mask(payload, key))
    first, length, body = _unmask(frames.encode(frames.BINARY, payload))
    assert (first, length, body) == (0x80 | frames.BINARY, len(payload), payload)


def test_two_frames_of_one_payload_use_different_keys() -> None:
    one, two = frames.encode(frames.TEXT, b"same"), frames.encode(frames.TEXT, b"same")
    assert one[2:6] != two[2:6] or one[6:] != two[6:]  # 1 in 2^32 to fail by chance


def test_a_non_final_frame_has_fin_clear() -> None:
    assert frames.encode(frames.TEXT, b"x", fin=False)[0] == frames.TEXT


@pytest.mark.parametrize(
    ("first_two", "extended", "why"),
    [
        (bytes([0x81, 0x85]), b"", "masked"),
        (bytes([0xC1, 0x05]), b"", "reserved"),
        (bytes([0x83, 0x00]), b"", "opcode"),
        (bytes([0x09, 0x00]), b"", "control"),  # a ping without FIN
        (bytes([0x89, 126]), struct.pack("!H", 126), "control"),  # a 126-byte ping
        (bytes([0x82, 127]), struct.pack("!Q", 1 << 63), "high bit"),
    ],
)
def test_headers_a_client_must_refuse(first_two: bytes, extended: bytes, why: str) -> None:
    with pytest.raises(frames.FrameError, match=why) as caught:
        frames.parse_header(first_two, extended)
    assert caught.value.code == frames.PROTOCOL_ERROR


def test_a_server_header_reads_its_extended_length() -> None:
    header = frames.parse_header(bytes([0x02, 127]), struct.pack("!Q", 1 << 20))
    assert (header.fin, header.opcode, header.length) == (False, frames.BINARY, 1 << 20)
    assert frames.header_size(126) == 2 and frames.header_size(127) == 8
    assert frames.header_size(125) == 0


def test_close_bodies_carry_code_and_reason() -> None:
    assert frames.parse_close(frames.close_payload(4503, "retry-after=7")) == (
        4503,
        "retry-after=7",
    )
    assert frames.parse_close(b"") == (frames.NO_STATUS, "")
    assert frames.close_payload(frames.ABNORMAL, "never on the wire") == b""
    long = frames.close_payload(1000, "é" * 100)  # cut to 125 bytes on a character boundary
    assert len(long) <= 125 and frames.parse_close(long)[1] == "é" * 61


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\x03", frames.PROTOCOL_ERROR),
        (struct.pack("!H", 999), frames.PROTOCOL_ERROR),
        (struct.pack("!H", 1006), frames.PROTOCOL_ERROR),
        (struct.pack("!H", 2000), frames.PROTOCOL_ERROR),
        (struct.pack("!H", 1000) + b"\xff", frames.INVALID_DATA),
    ],
)
def test_close_bodies_a_client_must_refuse(body: bytes, code: int) -> None:
    with pytest.raises(frames.FrameError) as caught:
        frames.parse_close(body)
    assert caught.value.code == code
