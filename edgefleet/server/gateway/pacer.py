"""Agent frames handled per turn of the event loop, bounded, so API requests
keep their place in line.

The event loop runs every callback that is ready in one turn. When a fan-out
lands, 10,000 agents report within seconds: every frame that arrives wakes its
link's task, and one turn decoded and handled thousands of them back to back
(250-600 ms a turn, measured). An API request needs several turns (each database
statement goes to the database thread and comes back on a later one), and
waited out every one of them: ``GET /jobs/{id}`` took 0.6-1 s while the fan-out
landed (issue 16).

Each agent link asks the :class:`FramePacer` for a slot before it handles a
frame. Past ``per_turn`` slots in one turn, a link waits for a later turn, in
arrival order. Every frame is still handled, in the order links asked; a busy
stretch is spread over more, shorter turns. A link handles one frame at a time,
so it holds at most one place in the line: an agent that floods frames waits
behind the others instead of taking their turns.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

PER_TURN = 100
"""Slots per turn. A frame costs 50-100 µs to decode and handle, so a turn of
agent work stays under ~10 ms; an idle loop turns in microseconds, so a lone
link (a proxied download, an exec session) is not slowed: it asks once per turn."""


HOLD = 20.0
"""Seconds after agents last kept the loop busy before :meth:`FramePacer.calm`
says calm again. A fan-out to 10,000 devices is pushed in a few seconds and
its reports land over the next 10-15 (RESULTS.md); a full collection in that
window is a pause every API request behind it waits out."""


class FramePacer:
    def __init__(
        self,
        per_turn: int = PER_TURN,
        hold: float = HOLD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_turn < 1:
            raise ValueError("per_turn must be at least 1")
        self.per_turn = per_turn
        self.hold = hold
        self.clock = clock
        self._left = per_turn
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._scheduled = False
        self.frames = 0
        """Frames the links asked a slot for, since start (``/metrics``)."""
        self.deferred = 0
        """Frames of those that waited for a later turn (``/metrics``: how often
        agents were paced)."""
        self.sent = 0
        """Messages the hub sent to agents, since start: a burst of them
        (a fan-out's desired states) means their replies are on the way."""
        self._deferred_at_last_look = 0
        self._sent_at_last_look = 0
        self._busy_at = -math.inf

    @property
    def waiting(self) -> int:
        return sum(1 for waiter in self._waiting if not waiter.done())

    @property
    def quiet(self) -> bool:
        """Nothing waits and no turn is scheduled: an idle server costs nothing."""
        return not self._scheduled and not self._waiting

    def calm(self) -> bool:
        """Agents have not kept the loop busy for :attr:`hold` seconds. Work
        that can wait (a full collection, see :meth:`edgefleet.heap.Tenure.pace`)
        is done in calm stretches, not on top of a fan-out landing or a
        reconnect storm.

        Busy, as seen at each call: a frame waited for a later turn since the
        last call, or more than ``per_turn`` messages were sent to agents (a
        fan-out was pushed: its reports are coming, though none has yet made
        anything wait; a full collection that started there took 333-494 ms
        of a landing's first seconds on PostgreSQL)."""
        now = self.clock()
        if (
            self.deferred != self._deferred_at_last_look
            or self.sent - self._sent_at_last_look > self.per_turn
        ):
            self._busy_at = now
        self._deferred_at_last_look = self.deferred
        self._sent_at_last_look = self.sent
        return now - self._busy_at >= self.hold

    async def slot(self) -> None:
        """Return when this turn has room for one more frame (now, unless the
        turn's slots are taken or others already wait)."""
        self.frames += 1
        if self._left > 0 and not self._waiting:
            self._left -= 1
            self._schedule()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self.deferred += 1
        self._schedule()
        await waiter  # cancelled (the link closed): left in the line, skipped there

    def _schedule(self) -> None:
        # call_soon from a turn runs in the next one: that is where a turn begins
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._scheduled = False
        left = self.per_turn
        while self._waiting and left:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                left -= 1
        self._left = left
        if self._waiting or left < self.per_turn:
            self._schedule()  # more to let through, or slots to give back next turn
