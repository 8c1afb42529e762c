"""The server's collector settings, in a fresh interpreter (they are process-wide)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc
from edgefleet import heap
before = gc.get_freeze_count()
heap.settle()
print(before, gc.get_freeze_count(), *gc.get_threshold())
cycle = []
cycle.append(cycle)
del cycle
print(gc.collect())
"""


def test_settle_freezes_what_start_up_built_and_still_collects_cycles() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    before, frozen, young, _middle, _old = (int(v) for v in out[0].split())
    assert before == 0
    assert frozen > 1000  # the interpreter's and the imports' objects, out of every walk
    assert young == 20_000
    assert int(out[1]) >= 1  # a cycle made after start-up is still found and freed
