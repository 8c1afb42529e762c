"""The garbage collector, tuned for a process that holds thousands of agent
connections: the server, and the fleet simulator (thousands of agents).

CPython's cyclic collector walks every tracked object of the generations it
collects; a full collection walks them all. A server holding 10,000 agent
sessions has millions (plus everything its imports built), and under load
py-spy found the collector taking a fifth of the event loop's time, in
pauses that every API request behind them waits out; in the simulator it
was the largest single cost of a fan-out to 2,000 agents.

Two changes, both about work the collector does for nothing:

- what exists once the app is built (modules, routes, models, the ORM's
  mappers) lives as long as the process: it is moved out of the collector's
  sight (:func:`gc.freeze`) instead of being walked in every full collection;
- the youngest generation is collected after :data:`YOUNG` allocations rather
  than 700, so a request's or a message's short-lived objects are mostly gone
  by then, instead of being caught alive and promoted to the old generation,
  whose growth is what triggers full collections.

Cycles are still collected; nothing here turns the collector off.
"""

from __future__ import annotations

import gc

YOUNG = 20_000
"""Allocations (net of frees) between collections of the youngest generation."""


def settle() -> None:
    """Collect what start-up left behind, freeze the rest, and space out young
    collections. Call when what is built will live as long as the process
    (the app, before it serves; the simulator's agents, once created)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)
