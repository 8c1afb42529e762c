"""Stored logs are bounded twice: the agent ships at most its lines/bytes, the
server keeps at most its own, always the newest lines, oldest first."""

from __future__ import annotations

from edgefleet.agent.telemetry.logs import trim
from edgefleet.server.telemetry.store import bounded
from edgefleet.wire.telemetry import LogLine


def lines(count: int, width: int = 9) -> list[LogLine]:
    return [LogLine(text=f"{n:0{width}d}") for n in range(count)]


def test_server_keeps_the_newest_lines_within_both_bounds() -> None:
    kept, size = bounded(lines(100), max_lines=30, max_bytes=10_000)
    assert [ln.text for ln in kept] == [f"{n:09d}" for n in range(70, 100)]
    assert size == 30 * 10
    kept, size = bounded(lines(100), max_lines=1000, max_bytes=105)  # 10 bytes a line
    assert len(kept) == 10 and kept[-1].text == "000000099" and size <= 105


def test_agent_trims_the_same_way() -> None:
    got = trim(lines(50), max_lines=20, max_bytes=10_000)
    assert len(got) == 20 and got[0].text == "000000030"
    assert trim(lines(50, width=4000), max_lines=20, max_bytes=10_000)[-1].text.endswith("49")
    assert len(trim(lines(50, width=4000), max_lines=20, max_bytes=10_000)) == 2
