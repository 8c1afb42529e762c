"""The process runtime reads only the end of a log file for a tail (the agent
ships tails every few seconds; a service's file can be gigabytes): the same
lines as reading it whole, for any block size and line lengths."""

from __future__ import annotations

import random
from pathlib import Path

from edgefleet.agent.runtimes.process_logs import read_lines


def test_tail_equals_reading_the_whole_file(tmp_path: Path) -> None:
    rng = random.Random(18)
    path = tmp_path / "stdout.log"
    for _ in range(40):
        count = rng.randint(0, 300)
        text = "\n".join("x" * rng.randint(0, 200) + str(i) for i in range(count))
        if count and rng.random() < 0.5:
            text += "\n"
        path.write_text(text)
        whole = text.splitlines()
        for tail in (None, 0, 1, 7, 100, 1000):
            got, size = read_lines(path, tail, block=rng.choice([5, 64, 4096]))
            assert got == (whole if tail is None else whole[-tail:] if tail else [])
            assert size == len(text.encode())


def test_a_missing_file_has_no_lines(tmp_path: Path) -> None:
    assert read_lines(tmp_path / "none", 10) == ([], 0)
