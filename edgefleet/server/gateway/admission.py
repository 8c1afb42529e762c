"""Admission of agent connections: at most the rate this replica can serve.

After a restart every agent of the fleet comes back within seconds. Each
handshake costs a credential lookup, a presence write and maybe a desired
state, so 10,000 at once would queue behind each other until their own
timeouts expired and they all tried again. Instead the gateway admits
``rate`` connections a second (a token bucket holding one second's worth)
and answers the rest ``503`` with a ``Retry-After`` that *is* a slot: every
refusal books the next free second-fraction after those already handed out,
so 5,000 refused agents are told 1, 1, ..., 2, 2, ..., 25 s and come back at
about the rate they can be admitted. The wait therefore grows with the load,
and the agent adds its own jitter on top (``agent/connection.py``).

Booked slots are not enforced: a returning agent still needs a token, and one
that finds none books again. Slots never reach further than
``MAX_RETRY_AFTER`` ahead, so a server that was overrun recovers.

Pure: no I/O; the clock is injected so tests step time by hand.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

Clock = Callable[[], float]

MAX_RETRY_AFTER = 120
"""The longest wait handed out, seconds (10,000 agents at 100/s need 100 s)."""


class Admission:
    """A token bucket of ``rate`` per second with a queue of booked slots."""

    def __init__(self, rate: float, *, clock: Clock = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("the admission rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.clock = clock
        self._tokens = self.capacity
        self._stamp = clock()
        self._next_slot = self._stamp  # the first free moment not yet promised
        self.admitted = 0
        self.refused = 0
        self._reported = (self._stamp, 0)  # (when, refused then)
        self._said = False  # the first refusal is told at once, however soon after start

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def admit(self) -> int | None:
        """None to let this connection in now, else the whole seconds to wait."""
        now = self.clock()
        self._refill(now)
        if self._tokens >= 1.0 - 1e-9:
            self._tokens -= 1.0
            self.admitted += 1
            return None
        self.refused += 1
        # Slots already promised drain at `rate`: this one comes after them.
        self._next_slot = min(max(self._next_slot, now) + 1.0 / self.rate, now + MAX_RETRY_AFTER)
        return max(1, min(MAX_RETRY_AFTER, math.ceil(self._next_slot - now - 1e-6)))

    def summary(self, every: float = 5.0) -> str | None:
        """A line for the log at most every ``every`` seconds while refusing:
        one line per storm tick instead of one per turned-away agent."""
        now = self.clock()
        when, refused = self._reported
        if self.refused == refused or (self._said and now - when < every):
            return None
        self._said = True
        self._reported = (now, self.refused)
        return (
            f"agent admission: {self.refused - refused} connections asked to retry in the "
            f"last {now - when:.0f} s (rate {self.rate:g}/s); slots booked "
            f"{self.backlog_seconds:.0f} s ahead"
        )

    @property
    def backlog_seconds(self) -> float:
        """How far ahead slots are promised (0 when nobody is waiting)."""
        return max(0.0, self._next_slot - self.clock())
