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
- what lives as long as a connection (sessions, links, WebSocket protocols,
  transports: ~90 objects per agent) is frozen too, by :class:`Settler`, a
  slice at a time as it survives. Measured in the server at 3,000 sim agents
  (issue 16), those objects sat in the middle generation (150,000-200,000
  objects) and every middle collection walked them all: 165-175 ms of CPU
  each, one of them during a fan-out, where API requests waited it out;
- the youngest generation is collected after :data:`YOUNG` allocations rather
  than 700, so a request's or a message's short-lived objects are mostly gone
  by then, instead of being caught alive and promoted to the old generation,
  whose growth is what triggers full collections.

Cycles are still collected; nothing here turns the collector off. A frozen
object that later becomes cyclic garbage (a connection that closed) is not
collected while frozen, so the :class:`Settler` thaws everything and collects
it all whenever what it froze since the last thaw exceeds what was frozen
then: frozen garbage stays bounded under any connect/disconnect churn, and
the full walk that costs (a pause in proportion to the whole heap, as
CPython's own full collections are) comes at doublings, half as often as
CPython's rule (a quarter's growth) would bring one.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

YOUNG = 20_000
"""Allocations (net of frees) between collections of the youngest generation."""

SETTLE_EVERY = 1.0
"""Seconds between the settler's looks at the older generations."""


def settle() -> None:
    """Collect what start-up left behind, freeze the rest, and space out young
    collections. Call when what is built will live as long as the process
    (the app, before it serves; the simulator's agents, once created)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)


def _survivors() -> int:
    """Tracked objects in the middle and old generations (the frozen ones are
    in neither): what every middle or full collection walks."""
    return len(gc.get_objects(1)) + len(gc.get_objects(2))


@dataclass
class Settler:
    """Freezes what survived into the older generations, :attr:`least` objects
    at a time (after a full collection, which walks only what is not frozen:
    no garbage that exists then is frozen), so each pause walks about
    ``least`` objects however large the fleet; thaws and collects everything
    when what it froze since the last thaw reaches :attr:`thaw_growth` of what
    was frozen then (connections that closed left cyclic garbage among the
    frozen)."""

    least: int = 20_000
    """survivors worth a freeze (a collection walking about this many)"""
    thaw_growth: float = 1.0
    """frozen since the last thaw, as a share of what was frozen then"""
    _since_thaw: int = 0
    _at_thaw: int = -1

    def look(self) -> str:
        """One look: ``"froze"``, ``"thawed"`` (thawed, collected and froze
        again) or ``"waited"``."""
        if self._at_thaw < 0:
            self._at_thaw = gc.get_freeze_count()
        if _survivors() < self.least:
            return "waited"
        if self._since_thaw > self._at_thaw * self.thaw_growth:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._at_thaw, self._since_thaw = gc.get_freeze_count(), 0
            return "thawed"
        gc.collect()
        self._since_thaw += _survivors()
        gc.freeze()
        return "froze"


def keep_settled(every: float = SETTLE_EVERY) -> threading.Thread:
    """Run a :class:`Settler` every ``every`` seconds, in a daemon thread: a
    collection holds the GIL wherever it runs, and a thread needs nothing from
    the event loop (or the app) to keep going."""
    settler = Settler()

    def loop() -> None:
        while True:
            time.sleep(every)
            began = time.thread_time()
            did = settler.look()
            if did != "waited":
                log.debug(
                    "heap %s: %d frozen, %.0f ms CPU",
                    did,
                    gc.get_freeze_count(),
                    (time.thread_time() - began) * 1e3,
                )

    thread = threading.Thread(target=loop, name="heap-settler", daemon=True)
    thread.start()
    return thread
