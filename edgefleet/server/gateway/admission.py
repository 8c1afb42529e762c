"""Admission of agent connections: as fast as this replica can serve them.

After a restart every agent of the fleet comes back within seconds. Each
handshake costs a credential lookup, a presence write and maybe a desired
state (~1 ms of server CPU, measured on a reconnect storm of 2,000), so
10,000 at once would queue behind each other until their own timeouts
expired and they all tried again. Instead the gateway admits connections
from a token bucket whose rate follows the event loop: while the loop keeps
its lag under ``LAG_BOUND`` the rate climbs towards the configured ceiling
(``--agent-connects-per-second``); when the lag goes over, the rate is cut
(additive increase, multiplicative decrease) and the bucket with it, so the
next connections are refused. The rate never falls under a twentieth of the
ceiling: a loop lagging because the machine is busy still admits, slowly.
A fixed rate was either too slow (200/s made 10,000 agents wait 50 s on an
idle server) or too fast for a busy one.

The rest are answered with a ``Retry-After`` that *is* a slot: every refusal
books the next free second-fraction after those already handed out, at the
current rate, so 5,000 refused agents are told 1, 1, ..., 2, 2, ... s and come
back at about the rate they can be admitted. The wait therefore grows with
the load, and the agent adds its own jitter on top (``agent/connection.py``).

The rate alone does not see work that waits off the loop (the credential
lookup queues for a database connection): a restart's first wave admitted at
1,000/s could leave handshakes waiting longer than the agents' 15 s timeout,
and every agent that gave up would come back to queue again while the server
still did its lookup. So at most ``MAX_IN_FLIGHT`` admitted connections may be
waiting for their WebSocket to be accepted (the part the agent's timeout
covers; the endpoint calls :meth:`Admission.finished` once accepted, or once
the agent left or the lookup failed); past that, connections are refused as
over the rate. One never released would stop counting after ``STALE_AFTER``.

When the bound on handshakes in flight is what refuses, the bucket's rate
overstates what the server serves: at 5,000 agents on a busy machine 100
handshakes were always in flight, about 100 a second were accepted, and slots
booked at the bucket's 1,000/s told every refused agent "1 s", so it came back
to be refused again (over 7,500 refusals for 5,000 reconnecting agents, each a
WebSocket handshake on both sides, on the cores the handshakes needed). So while that
bound refuses, slots are booked at the rate it lets through: the bound over
how long a handshake has recently taken from admission to acceptance
(Little's law; ``SERVED_HEADROOM`` above it, so a server that speeds up is
not left idle), never under the floor nor over the bucket's rate.

Booked slots are not enforced: a returning agent still needs a token, and one
that finds none books again. Slots never reach further than
``MAX_RETRY_AFTER`` ahead, so a server that was overrun recovers.

:class:`Admission` is pure: no I/O, the clock injected, the loop's lag handed
in by :func:`watch_lag` (the one coroutine here), so tests step both by hand.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]

MAX_RETRY_AFTER = 120
"""The longest wait handed out, seconds."""

LAG_BOUND = 0.1
"""Loop lag (seconds) above which the rate is cut:
half the API's p99 target, so a storm never stalls the API behind it."""

BURST = 0.25
"""The bucket holds this many seconds' worth of connections: a restart's first
wave is admitted in slices the lag watcher can see, not one second's worth at once."""

INCREASE = 0.02
"""Per lag reading under the bound, the rate grows by this share of the ceiling
(from the floor to the ceiling in ~2.5 s of readings every 50 ms)."""

DECREASE = 0.7
"""Per lag reading over the bound, the rate is multiplied by this."""

MAX_IN_FLIGHT = 100
"""Admitted connections not yet accepted, at most (see the module docstring)."""

STALE_AFTER = 30.0
"""An admitted handshake counts as in flight for at most this long, seconds."""

LAG_FADE = 0.5
"""Each reading keeps at least this share of the last one (see :meth:`Admission.observe_lag`)."""

SERVED_HEADROOM = 1.5
"""Slots are booked this much faster than the handshakes in flight are accepted."""

LATENCY_WEIGHT = 0.05
"""Each accepted handshake's share in the moving average of handshake times."""

QUIET_AFTER = 10.0
"""Seconds without a connection asking in after which the loop's lag is read
every ``QUIET_EVERY`` instead of every 50 ms (see :func:`watch_lag`)."""

QUIET_EVERY = 0.5
"""Seconds between lag readings while no agent is connecting."""

FLOOR_SHARE = 0.05
"""The rate never falls under this share of the ceiling: even a server on a
busy machine keeps admitting, and keeps its booked slots within reach."""


class Admission:
    """A token bucket whose rate follows the loop's lag, with a queue of booked slots."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Clock = time.monotonic,
        lag_bound: float = LAG_BOUND,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        if rate <= 0:
            raise ValueError("the admission rate must be positive")
        self.ceiling = rate
        self.floor = rate * FLOOR_SHARE
        self.rate = rate  # the loop's lag is unknown yet: the bucket alone bounds the start
        self.lag_bound = lag_bound
        self.lag = 0.0
        self.max_in_flight = max_in_flight
        self._in_flight: deque[float] = deque()  # when each unfinished handshake was admitted
        self._latency: float | None = None  # moving average, admitted to accepted, seconds
        self.clock = clock
        self._tokens = self.capacity
        self._stamp = clock()
        self._next_slot = self._stamp  # the first free moment not yet promised
        self.admitted = 0
        self.refused = 0
        # clock() of the last connection asking in; "now" at first, because a
        # server that just started is the one a reconnect storm is about to hit.
        self.last_asked = self._stamp
        self._reported = (self._stamp, 0)  # (when, refused then)
        self._said = False  # the first refusal is told at once, however soon after start

    @property
    def capacity(self) -> float:
        return max(1.0, self.rate * BURST)

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def observe_lag(self, lag: float) -> None:
        """The event loop's latest lateness, seconds: over the bound the rate is
        cut (and the bucket shrinks with it, so the next refusals come at once),
        under it the rate climbs back towards the ceiling."""
        self._refill(self.clock())
        # A stall's reading fades over a few readings instead of being forgotten
        # at the next one: the work it stood for is often still queued.
        self.lag = max(lag, self.lag * LAG_FADE)
        if lag > self.lag_bound:
            self.rate = max(self.floor, self.rate * DECREASE)
        else:
            self.rate = min(self.ceiling, self.rate + self.ceiling * INCREASE)
        self._tokens = min(self._tokens, self.capacity)

    def admit(self) -> int | None:
        """None to let this connection in now, else the whole seconds to wait."""
        now = self.clock()
        self.last_asked = now
        self._refill(now)
        while self._in_flight and self._in_flight[0] < now - STALE_AFTER:
            self._in_flight.popleft()
        if self._tokens >= 1.0 - 1e-9 and len(self._in_flight) < self.max_in_flight:
            self._tokens -= 1.0
            self.admitted += 1
            self._in_flight.append(now)
            return None
        self.refused += 1
        # Slots already promised drain at the booking rate: this one comes after them.
        rate = self.rate
        if len(self._in_flight) >= self.max_in_flight:  # the handshakes under way refuse
            rate = self._serving()
        self._next_slot = min(max(self._next_slot, now) + 1.0 / rate, now + MAX_RETRY_AFTER)
        return max(1, min(MAX_RETRY_AFTER, math.ceil(self._next_slot - now - 1e-6)))

    def _serving(self) -> float:
        """The rate to book slots at while the handshakes in flight are at their
        bound: as many as the bound, per recent handshake time (with headroom),
        within the floor and the bucket's rate; the bucket's rate until a
        handshake has been timed."""
        if not self._latency:
            return self.rate
        serving = self.max_in_flight / self._latency * SERVED_HEADROOM
        return max(self.floor, min(self.rate, serving))

    def finished(self) -> None:
        """An admitted connection is accepted (its lookup done): room for another."""
        if not self._in_flight:
            return
        took = self.clock() - self._in_flight.popleft()  # first in, first out: near enough
        last = self._latency if self._latency is not None else took
        self._latency = last + (took - last) * LATENCY_WEIGHT

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

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
            f"last {now - when:.0f} s (rate now {self.rate:.0f}/s of at most {self.ceiling:g}/s, "
            f"loop lag {self.lag * 1000:.0f} ms, {self.in_flight} awaiting their lookup, "
            f"a handshake takes {(self._latency or 0) * 1000:.0f} ms); "
            f"slots booked {self.backlog_seconds:.0f} s ahead"
        )

    @property
    def backlog_seconds(self) -> float:
        """How far ahead slots are promised (0 when nobody is waiting)."""
        return max(0.0, self._next_slot - self.clock())


def lag_interval(admission: Admission, every: float = 0.05) -> float:
    """How long :func:`watch_lag` sleeps next: ``every`` while agents are
    connecting (or were, in the last ``QUIET_AFTER`` s), ``QUIET_EVERY`` when
    none are. Readings every 50 ms are what lets the rate follow a storm, but
    on a server nobody connects to they were its most frequent wake-up (20 a
    second). The first connections of a storm are admitted at the ceiling
    anyway (the bucket bounds them), and fast readings resume at once."""
    if admission.in_flight or admission.clock() - admission.last_asked < QUIET_AFTER:
        return every
    return max(every, QUIET_EVERY)


async def watch_lag(admission: Admission, every: float = 0.05) -> None:
    """Tell ``admission`` how late the loop wakes a sleeper, every
    :func:`lag_interval` s, for as long as the server runs (the hub starts and
    cancels this task)."""
    loop = asyncio.get_running_loop()
    while True:
        interval = lag_interval(admission, every)
        start = loop.time()
        await asyncio.sleep(interval)
        admission.observe_lag(max(0.0, loop.time() - start - interval))
