"""The engine's long answers parsed without I/O: multiplexed output frames and
JSON progress items, however the transport cuts them."""

from __future__ import annotations

import json
import struct

from edgefleet.agent.engine.streams import (
    STDERR,
    STDOUT,
    Demuxer,
    JsonItems,
    collect,
    demux,
    json_items,
)


def frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxI", kind, len(payload)) + payload


STREAM = frame(1, b"hello\n") + frame(2, b"oops\n") + frame(1, b"") + frame(1, b"x" * 70000)


def test_frames_come_out_whole_however_the_bytes_are_cut() -> None:
    whole = list(demux([STREAM]))
    assert whole == [
        (STDOUT, b"hello\n"),
        (STDERR, b"oops\n"),
        (STDOUT, b""),
        (STDOUT, b"x" * 70000),
    ]
    for size in (1, 3, 7, 8, 9, 4096):
        pieces = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
        assert list(demux(pieces)) == whole, size


def test_an_incomplete_frame_waits_and_is_counted() -> None:
    demuxer = Demuxer()
    cut = frame(2, b"partial line")
    assert demuxer.feed(cut[:-3]) == []
    assert demuxer.pending == len(cut) - 3
    assert demuxer.feed(cut[-3:]) == [(STDERR, b"partial line")]
    assert demuxer.pending == 0


def test_stdin_echo_counts_as_stdout_and_collect_splits_the_two() -> None:
    assert collect([frame(0, b"in"), frame(1, b"out"), frame(2, b"err"), frame(1, b"2")]) == (
        b"inout2",
        b"err",
    )


def test_progress_items_split_anywhere_even_inside_a_character() -> None:
    items = [{"status": "Pulling fs layer", "id": "abc"}, {"stream": "STEP 1/2: FROM ünïcode\n"}]
    raw = "\r\n".join(json.dumps(i, ensure_ascii=False) for i in items).encode() + b"\r\n"
    raw += b'{"aux":{"ID":"sha256:1"}}{"error":"boom"}'  # Podman writes some back to back
    expected = [*items, {"aux": {"ID": "sha256:1"}}, {"error": "boom"}]
    for size in (1, 2, 5, 64):
        decoder = JsonItems()
        found = []
        for i in range(0, len(raw), size):
            found += decoder.feed(raw[i : i + size])
        assert found == expected, size
        assert decoder.rest == ""


def test_a_progress_stream_cut_inside_an_item_ends_with_an_error() -> None:
    found = list(json_items([b'{"status":"ok"}\n{"status":"Pushi']))
    assert found[0] == {"status": "ok"}
    assert "ended in the middle of" in found[1]["error"]
