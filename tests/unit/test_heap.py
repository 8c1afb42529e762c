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


TENURE = """
import gc, weakref
from edgefleet import heap

class Node:
    pass

members = [0]
tenure = heap.Tenure(lambda: members[0], least=100, churn=0.1, growth=10.0)
tenure.install()

def cycle():
    node = Node()
    node.me = node
    return node

# A small fleet: a full collection freezes nothing.
members[0] = 99
gc.collect()
print("small", gc.get_freeze_count(), tenure.frozen)

# A large one: the survivors of a full collection are frozen, out of every walk.
members[0] = 1000
session = cycle()
gc.collect()
walked = any(o is session for o in gc.get_objects())
print("large", gc.get_freeze_count() > 0, tenure.frozen, walked, tenure.frozen_objects == gc.get_freeze_count())

# A frozen session that departs is cyclic garbage the collector does not see...
ref = weakref.ref(session)
del session
tenure.departed()
gc.collect()
print("held", ref() is not None, tenure.frozen, tenure.frozen_objects == gc.get_freeze_count())

# ...until a tenth of the fleet has departed: then it is thawed and freed.
for _ in range(100):
    tenure.departed()
print("thawed", gc.get_freeze_count(), tenure.frozen, tenure.thaws, tenure.frozen_objects)
members[0] = 50  # and a fleet too small to freeze again
gc.collect()
print("freed", ref() is None, gc.get_freeze_count())
tenure.uninstall()
print("uninstalled", tenure._collected not in gc.callbacks)
"""

GROWTH = """
import gc
from edgefleet import heap
tenure = heap.Tenure(lambda: 1000, least=100, churn=0.1, growth=0.5)
tenure.install()
gc.collect()
first = gc.get_freeze_count()
kept = [[i] for i in range(first)]  # the frozen heap more than doubles
gc.collect()
print(first > 0, tenure.thaws, gc.get_freeze_count())
"""


def _probe(code: str) -> list[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()


def test_tenure_freezes_a_large_fleet_and_frees_departed_sessions_on_churn() -> None:
    small, large, held, thawed, freed, uninstalled = (line.split() for line in _probe(TENURE))
    assert small == ["small", "0", "False"]
    # frozen: no longer walked; the frozen objects counted without walking them
    assert large == ["large", "True", "True", "False", "True"]
    assert held == ["held", "True", "True", "True"]  # one departure of 1,000 thaws nothing
    assert thawed == ["thawed", "0", "False", "1", "0"]
    assert freed == ["freed", "True", "0"]
    assert uninstalled == ["uninstalled", "True"]


def test_tenure_thaws_when_the_frozen_heap_grows_by_half_per_session() -> None:
    grew, thaws, frozen = _probe(GROWTH)[0].split()
    assert grew == "True"
    assert thaws == "1"
    assert frozen == "0"


FLEET_GROWS = """
import gc
from edgefleet import heap
members = [1000]
tenure = heap.Tenure(lambda: members[0], least=100, churn=0.1, growth=0.5)
tenure.install()
gc.collect()
first = gc.get_freeze_count()
kept = [[i] for i in range(first)]  # the frozen heap doubles...
members[0] = 2500  # ...with the fleet: each session's share shrank
gc.collect()
print(tenure.thaws, gc.get_freeze_count() > first)
"""


def test_tenure_keeps_a_growing_fleet_frozen() -> None:
    thaws, grew = _probe(FLEET_GROWS)[0].split()
    assert thaws == "0"
    assert grew == "True"


CHURN_OF_THE_LARGEST = """
import gc
from edgefleet import heap
members = [200]
tenure = heap.Tenure(lambda: members[0], least=100, churn=0.1, growth=100.0)
tenure.install()
gc.collect()  # frozen first at 200 sessions, as a connecting fleet is
members[0] = 2000
gc.collect()  # and again at 2,000
for _ in range(100):  # five times a tenth of the first step, a twentieth of the fleet
    tenure.departed()
print(tenure.frozen, tenure.thaws)
for _ in range(101):  # past a tenth of the largest
    tenure.departed()
print(tenure.frozen, tenure.thaws)
"""


def test_churn_is_counted_against_the_largest_fleet_frozen() -> None:
    """A reconnect storm's retried connections do not thaw a fleet frozen in
    steps; a tenth of the whole fleet leaving still does."""
    kept, thawed = (line.split() for line in _probe(CHURN_OF_THE_LARGEST))
    assert kept == ["True", "0"]
    assert thawed == ["False", "1"]


PACE = """
import gc
from edgefleet import heap
members = [50]
tenure = heap.Tenure(lambda: members[0], least=100, churn=0.1, growth=100.0)
tenure.install()
kept = [[i] for i in range(5000)]
gc.collect(1)
gc.collect(1)
print(tenure.pace(promoted=10))  # a small fleet: CPython's own rule decides
members[0] = 1000
gc.collect()
kept += [[i] for i in range(5000)]  # promoted to the old generation since the freeze
gc.collect(1)
gc.collect(1)
old = len(gc.get_objects(generation=2))
print(tenure.pace(promoted=old + 1), old >= 5000)  # below the bound: left alone
print(tenure.pace(promoted=1000), len(gc.get_objects(generation=2)), tenure.freezes, tenure.paced)
"""


def test_tenure_paces_full_collections_by_what_reached_the_old_generation() -> None:
    small, below, ran = (line.split() for line in _probe(PACE))
    assert small == ["False"]
    assert below == ["False", "True"]
    ran_, old_after, freezes, paced = ran
    assert ran_ == "True"
    assert int(old_after) < 1000  # collected, and the survivors frozen again
    assert freezes == "2"
    assert paced == "1"  # counted once (/metrics), the calls that did nothing not at all


GROWING = """
import gc
from edgefleet import heap
members = [1000]
tenure = heap.Tenure(lambda: members[0], least=100, churn=0.1, growth=100.0, paced=True)
tenure.install()


def promote(n):  # n new objects, moved to the old generation
    made = [[i] for i in range(n)]
    gc.collect(1)
    gc.collect(1)
    return made


gc.collect()  # the fleet frozen at 1,000 sessions
kept = promote(5000)
print("same fleet", tenure.pace(promoted=1000, calm=False), tenure.freezes)
members[0] = 1050
print("a few more", tenure.pace(promoted=1000, calm=False), tenure.freezes)
members[0] = 1100
print("grown", tenure.pace(promoted=1000, calm=False), tenure.freezes, tenure.members_at_collection)
members[0] = 1300
tenure.pace(promoted=10**9, calm=False)  # they came while little reached the old generation
more = promote(5000)
print("settled", tenure.pace(promoted=1000, calm=False), tenure.freezes)
members[0] = 1301
print("arriving", tenure.pace(promoted=1000, calm=False), tenure.freezes)
"""


def test_a_growing_fleet_is_frozen_in_steps_however_busy() -> None:
    """While agents connect (busy, never calm), their sessions are walked and
    frozen every ``promoted`` objects once ``least`` more sessions came, rather
    than in one pause of seconds when CPython's rule finally fires; a fleet
    that has stopped growing waits for calm (a fan-out pushed right after)."""
    same, few, grown, settled, arriving = (line.split() for line in _probe(GROWING))
    assert same == ["same", "fleet", "False", "1"]  # busy, not grown: waits for calm
    assert few == ["a", "few", "more", "False", "1"]  # 50 more of least=100: still waits
    assert grown == ["grown", "True", "2", "1100"]
    assert settled == ["settled", "False", "2"]  # 200 more since, but none since the last look
    assert arriving == ["arriving", "True", "3"]


SELF_PACED = """
import gc
from edgefleet import heap
tenure = heap.Tenure(lambda: 1000, least=100, churn=0.1, growth=100.0, paced=True)
tenure.install()
default = gc.get_threshold()[2]
gc.collect()
print("frozen", tenure.frozen, default, gc.get_threshold()[2] > 1_000_000)
kept = [[i] for i in range(100_000)]  # far more than a quarter of the survivors
for _ in range(40):
    gc.collect(1)  # 40 middle collections: CPython would have run a full one by now
print("own rule off", len(gc.get_objects(generation=2)) >= 100_000, tenure.freezes)
print("busy", tenure.pace(promoted=1000, calm=False, ceiling=1_000_000))
print("ceiling", tenure.pace(promoted=1000, calm=False, ceiling=50_000), tenure.freezes)
tenure.thaw()
print("thawed", gc.get_threshold()[2] == default)
gc.collect()
tenure.uninstall()
print("uninstalled", gc.get_threshold()[2] == default)
"""


def test_a_self_paced_tenure_owns_full_collections_while_the_fleet_is_frozen() -> None:
    """The hub's tenure: CPython's rule is off while the fleet is frozen, so a
    full collection never starts on top of a fan-out landing unless the
    objects waiting for a calm moment pass the ceiling."""
    frozen, own_rule_off, busy, ceiling, thawed, uninstalled = (
        line.split() for line in _probe(SELF_PACED)
    )
    assert frozen[:2] == ["frozen", "True"] and frozen[3] == "True"
    assert own_rule_off == ["own", "rule", "off", "True", "1"]
    assert busy == ["busy", "False"]  # not calm, below the ceiling: waits
    assert ceiling == ["ceiling", "True", "2"]  # past the ceiling: collected, refrozen
    assert thawed == ["thawed", "True"]  # thawed: CPython's rule walks the heap again
    assert uninstalled == ["uninstalled", "True"]


SWEEP = """
import gc
from edgefleet import heap
heap.settle()
gc.collect()
sessions = [[i] for i in range(50_000)]  # what a fleet's sessions hold, old by now
gc.collect()
for i in range(len(sessions)):  # each "message" ends an old pending read, starts a young one
    sessions[i] = [i]
young = len(gc.get_objects(generation=0))
print(young, gc.get_count()[0])
print(heap.sweep_young(), len(gc.get_objects(generation=0)))
print(*(heap.sweep_young(middle=3) for _ in range(10)))
"""


def test_sweeping_collects_young_objects_that_cpythons_count_never_saw() -> None:
    """50,000 old objects replaced by young ones: CPython's count (allocations
    minus deallocations) stays near zero, so no young collection comes while
    the young generation holds them all; a sweep walks them now."""
    out = _probe(SWEEP)
    young, counted = (int(v) for v in out[0].split())
    assert young >= 50_000 and counted < 1_000
    generation, left = (int(v) for v in out[1].split())
    assert generation == 0 and left < 1_000
    # the middle generation after every `middle` + 1 sweeps, as CPython's rule
    assert out[2].split() == ["0", "0", "0", "1", "0", "0", "0", "0", "1", "0"]
