"""The server's collector settings, in a fresh interpreter (they are process-wide)."""

from __future__ import annotations

import json
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


def _run(probe: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout


def test_settle_freezes_what_start_up_built_and_still_collects_cycles() -> None:
    out = _run(PROBE).split("\n")
    before, frozen, young, _middle, _old = (int(v) for v in out[0].split())
    assert before == 0
    assert frozen > 1000  # the interpreter's and the imports' objects, out of every walk
    assert young == 20_000
    assert int(out[1]) >= 1  # a cycle made after start-up is still found and freed


# A "connection": objects in a cycle, as sessions, links and protocols are.
CONNECTIONS = """
import gc, json, weakref
from edgefleet import heap

class Conn:
    def __init__(self):
        self.me = self
        self.parts = [[i] for i in range(8)]  # lists stay tracked (dicts of ints do not)

def connect(n):
    return [Conn() for _ in range(n)]

heap.settle()
settler = heap.Settler(least=1_000)
"""

SETTLES_AFTER_ARRIVALS = (
    CONNECTIONS
    + """
fleet = connect(3_000)
gone = connect(500)
probe = weakref.ref(gone[0])
del gone  # closed before the fleet settled: cyclic garbage
frozen = gc.get_freeze_count()
looks = [settler.look() for _ in range(3)]
print(json.dumps({
    "looks": looks,
    "garbage_frozen": probe() is not None,
    "grew": gc.get_freeze_count() - frozen,
    "survivors": len(gc.get_objects(1)) + len(gc.get_objects(2)),
}))
"""
)


def test_a_settled_fleet_is_frozen_without_the_garbage_before_it() -> None:
    seen = json.loads(_run(SETTLES_AFTER_ARRIVALS))
    assert seen["looks"][0] != "waited"  # enough survivors: frozen at the first look
    assert not seen["garbage_frozen"]  # collected first, not kept frozen forever
    assert seen["grew"] >= 3_000 * 10  # the live connections left the walked generations
    assert seen["survivors"] < 1_000


CHURN = (
    CONNECTIONS
    + """
start = gc.get_freeze_count()
fleet = connect(3_000)
counts, did = [], []
for _ in range(12):  # every connection closes and a new one takes its place
    did += [settler.look(), settler.look()]
    counts.append(gc.get_freeze_count())
    fleet = connect(3_000)
print(json.dumps({"start": start, "counts": counts, "did": did}))
"""
)


def test_connect_disconnect_churn_does_not_grow_the_frozen_without_bound() -> None:
    seen = json.loads(_run(CHURN))
    fleet = 3_000 * 10  # objects one fleet of these connections has
    assert "thawed" in seen["did"]  # frozen cyclic garbage was collected again
    # Frozen: what start-up built, the live fleet, and at most about as much
    # garbage again -- never a fleet more per round (twelve rounds: 360,000).
    bound = (seen["start"] + fleet) * 2 + fleet * 1.5
    assert max(seen["counts"]) < bound, seen["counts"]
    assert seen["counts"][-1] < bound
