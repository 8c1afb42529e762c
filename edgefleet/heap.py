"""The garbage collector, tuned for a process that holds thousands of agent
connections: the server, and the fleet simulator (thousands of agents).

CPython's cyclic collector walks every tracked object of the generations it
collects; a full collection walks them all. A server holding 10,000 agent
sessions has millions (plus everything its imports built), and under load
py-spy found the collector taking a fifth of the event loop's time, in
pauses that every API request behind them waits out; in the simulator it
was the largest single cost of a fan-out to 2,000 agents.

Three changes, all about work the collector does for nothing:

- what exists once the app is built (modules, routes, models, the ORM's
  mappers) lives as long as the process: it is moved out of the collector's
  sight (:func:`gc.freeze`) instead of being walked in every full collection;
- the youngest generation is collected after :data:`YOUNG` allocations rather
  than 700, so a request's or a message's short-lived objects are mostly gone
  by then, instead of being caught alive and promoted to the old generation,
  whose growth is what triggers full collections; the middle generation is
  collected after :data:`MIDDLE` young collections rather than 10, so its
  pauses walk a few young collections' survivors, not ten;
- a settled fleet's sessions (:class:`Tenure`): ~130 tracked objects per
  connected agent (its coroutines, link, mux, WebSocket protocol), 1.3 million
  at 10,000 agents, which every full collection walked for 1.3-3 s of CPU
  while every request waited (issue 16's stalls). Survivors of a full
  collection are frozen too, and given back to the collector when the fleet
  churns, so the cycles of departed sessions are still freed.

Once the fleet is large, the server's hub decides when full collections run
(:meth:`Tenure.pace`, every second): after 100,000 objects have reached the
old generation, when agents have not kept the loop busy for a while or while
the fleet is still connecting (it is frozen as it comes), or after 1,000,000
whatever the load. CPython's own rule (a quarter of the last survivors) let
enough pile up for one pause of 0.35-0.9 s every few minutes, and started them
in the middle of a fan-out landing as readily as anywhere.

Cycles are still collected; nothing here turns the collector off.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

YOUNG = 20_000
"""Allocations (net of frees) between collections of the youngest generation."""

MIDDLE = 3
"""Young collections between collections of the middle generation. Each one
walks the survivors of the young collections since the last: at 10 (CPython's
default) a fleet of 10,000 agents connecting or taking a fan-out had 100-200k
of them, 130-630 ms of CPU in one pause."""


SWEEP_EVERY = 0.1
"""Seconds between the server hub's young collections (:func:`sweep_young`)."""


def sweep_young(middle: int = MIDDLE) -> int:
    """Collect the young generations now, as CPython's rule would if it could
    see how many young objects there are; answer the generation collected.

    CPython starts a young collection when allocations minus deallocations
    pass :data:`YOUNG`. An agent session replaces its objects rather than
    adding to them: each message it gets ends its pending read (a chain of
    about 14 coroutines, futures and frames, old by then) and starts another
    (young). So when 10,000 agents report at once, as after a fan-out or at
    every heartbeat, 140,000 young objects appear while the count barely moves,
    and the collection that finally comes walks them all in one pause: 80-220
    ms of young and middle collections in the landing of a fan-out to 10,000
    devices on PostgreSQL, a census of the young generations found 40,000
    coroutines and 10,000 futures, frames and generators among 140,000
    objects (2026-12-04). Run every :data:`SWEEP_EVERY` seconds, this walks
    what a tenth of a second made; the middle generation is collected once
    more than ``middle`` young collections ran since its last (every fifth
    sweep at 3), as by CPython's rule. Full collections are
    :meth:`Tenure.pace`'s to start, never this."""
    generation = 1 if gc.get_count()[1] > middle else 0
    gc.collect(generation)
    return generation


def settle() -> None:
    """Collect what start-up left behind, freeze the rest, and space out young
    collections. Call when what is built will live as long as the process
    (the app, before it serves; the simulator's agents, once created)."""
    gc.collect()
    gc.freeze()
    _, _, old = gc.get_threshold()
    gc.set_threshold(YOUNG, MIDDLE, old)


PROMOTED = 100_000
"""Objects in the old generation (what reached it since the last freeze) past
which :meth:`Tenure.pace` runs a full collection in a calm moment. Such a
collection took 110-170 ms on a settled 10,000-device server with SQLite and
200-500 ms with PostgreSQL (RESULTS.md, 2026-12-03)."""

CEILING = 1_000_000
"""Objects in the old generation past which :meth:`Tenure.pace` runs a full
collection however busy the moment: what waits for calm is bounded (what of it
is garbage is memory). At 400,000 a fan-out to 10,000 devices on PostgreSQL
passed it in its landing, whose in-flight work (replies parked on grouped
commits, each agent's pending read) is promoted while it lasts, and paused
510 ms there (2026-12-03); once it has landed, that work is gone and a calm
collection walks only what stayed."""

_NEVER = 1 << 30  # a generation threshold no count reaches


class Tenure:
    """Freezes what survives a full collection once the fleet is large, and
    thaws it when the fleet has churned or the frozen heap has grown.

    A full collection walks every object older than the last one; once the
    agents of a large fleet are connected, those are mostly their sessions,
    which live as long as their connections. Frozen right after a full
    collection (when every younger generation was just emptied, so only
    survivors are frozen), they are no longer walked: later full collections
    walk what was promoted since, not the fleet.

    The cost of freezing is that a frozen object which later becomes cyclic
    garbage is not freed until it is thawed. Sessions are the bulk of what is
    frozen, so every ``churn`` of the most sessions frozen since the last thaw
    having left thaws everything: the next full collection walks it all once, frees
    the departed, and freezes the rest again. For whatever else freezing kept,
    the frozen objects *per session* are watched: more than ``growth`` above
    the lowest seen since the last thaw also thaws (a fleet that grows grows
    its frozen heap in step, and is not thawed for that). Below ``least`` sessions nothing is frozen: full collections are
    cheap there, and freezing would only hold garbage longer."""

    def __init__(
        self,
        members: Callable[[], int],
        *,
        least: int = 500,
        churn: float = 0.1,
        growth: float = 0.5,
        paced: bool = False,
    ) -> None:
        self.members = members
        self.self_paced = paced  # while frozen, only pace() starts full collections
        oldest = gc.get_threshold()[2]
        self._oldest_threshold = oldest if oldest != _NEVER else 10  # CPython's default
        self.least = least
        self.churn = churn
        self.growth = growth
        self.frozen = False
        self.left = 0
        self.members_at_freeze = 0
        self.members_at_collection = 0  # sessions at the last full collection
        self._members_at_last_look = 0  # sessions at the last pace()
        self.baseline = 0.0  # fewest frozen objects per session since the last thaw
        self.freezes = 0
        self.thaws = 0
        self.paced = 0  # full collections :meth:`pace` ran (``/metrics``)
        self.frozen_objects = 0  # gc.get_freeze_count(), kept without walking the list

    def install(self) -> None:
        if self._collected not in gc.callbacks:
            self.frozen_objects = gc.get_freeze_count()  # start-up's (settle), walked once
            gc.callbacks.append(self._collected)

    def uninstall(self) -> None:
        if self._collected in gc.callbacks:
            gc.callbacks.remove(self._collected)
        self._collect_oldest_as_cpython_would()

    def departed(self) -> None:
        """One session ended: its objects may now be cyclic garbage."""
        self.left += 1
        if self.frozen and self.left > max(1, self.churn * self.members_at_freeze):
            self.thaw()

    def pace(self, promoted: int = PROMOTED, *, calm: bool = True, ceiling: int = CEILING) -> bool:
        """Run a full collection now if more than ``promoted`` objects reached
        the old generation since the last one and the moment suits: it is
        ``calm``, or the fleet has grown by ``least`` sessions since and is
        still growing (they are frozen as they come, in steps of about
        ``promoted`` objects), or more than ``ceiling`` objects wait. True if
        it ran.

        CPython starts a full collection once the objects promoted since the
        last one outnumber a quarter of its survivors. With the fleet frozen,
        that came every few minutes as a 0.35-0.9 s pause (a few hundred
        thousand objects at about 1 µs each) that every request waited out
        (issue 16: the 10-minute run's one request over 500 ms, at the same
        second in two runs), and at any moment, a fan-out landing included.
        While a fleet connects, its first one came only after some 5,000
        sessions, 0.8-1.5 s in one pause in the middle of their enrollment.
        Called every second (by the hub), this walks about ``promoted`` objects
        at a time, and their survivors are frozen (the collection ends in
        :meth:`_collected`). With ``paced=True`` CPython's rule is off while
        the fleet is frozen, so these are the only full collections then.
        Counting is a list of the old generation only: frozen objects are not
        in it. Below ``least`` sessions, CPython's rule alone decides."""
        members = self.members()
        arriving = members > self._members_at_last_look
        self._members_at_last_look = members
        if members < self.least:
            return False
        old = len(gc.get_objects(generation=2))
        if old <= promoted:
            return False
        # sessions still arriving, and enough of them since the last one: not
        # a fleet that has settled (a fan-out pushed right after the last
        # stragglers connected is no moment to walk them)
        growing = arriving and members - self.members_at_collection >= self.least
        if not (calm or growing) and old <= ceiling:
            return False
        gc.collect(2)
        self.paced += 1
        return True

    def thaw(self) -> None:
        """Give everything frozen since start-up's :func:`settle` back to the
        collector (the objects start-up froze come back too; the next full
        collection freezes the survivors again)."""
        gc.unfreeze()
        self.frozen_objects = 0
        self.frozen = False
        self._collect_oldest_as_cpython_would()  # the thawed heap is its to walk
        self.baseline = 0.0
        self.thaws += 1

    def _collect_oldest_as_cpython_would(self) -> None:
        young, middle, oldest = gc.get_threshold()
        if oldest == _NEVER:
            gc.set_threshold(young, middle, self._oldest_threshold)

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        # Runs inside the collector, right after a collection: gc.freeze only
        # moves list heads, and a full one has just emptied the young generations.
        if phase != "stop" or info.get("generation") != 2:
            return
        members = self.members_at_collection = self.members()
        if members < self.least:
            return
        # Counted here, not with gc.get_freeze_count(): that walks the whole
        # frozen list, a million objects at 10,000 agents, 50-100 ms of cache
        # misses after every paced collection (loop-lag watchdog, 2026-12-03).
        # After a full collection the young generations hold only what the
        # callbacks made since: what gc.freeze() moves is about its survivors.
        self.frozen_objects += len(gc.get_objects())
        gc.freeze()
        if self.self_paced:
            young, middle, _ = gc.get_threshold()
            gc.set_threshold(young, middle, _NEVER)
        per_member = self.frozen_objects / members
        if not self.frozen:
            self.left = 0
            self.members_at_freeze = 0
        # Churn is measured against the largest fleet frozen since the thaw: a
        # fleet frozen in steps as it connects (the first at ``least``) is not
        # thawed for the retried and superseded connections of a reconnect
        # storm, a tenth of its first step (a 1.1-1.4 s walk of the whole heap
        # right after, in GC logs of 10,000-agent storms).
        self.members_at_freeze = max(self.members_at_freeze, members)
        self.frozen = True
        self.freezes += 1
        if not self.baseline or per_member < self.baseline:
            self.baseline = per_member
        elif per_member > (1 + self.growth) * self.baseline:
            self.thaw()
