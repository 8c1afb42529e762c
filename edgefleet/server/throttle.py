"""Per-key token buckets and concurrency slots, in memory, for one replica.

A :class:`Throttle` answers "may this key (a client address, a username) try
once more, and if not, how long until it may?". Each key has a bucket of
``capacity`` tokens that refills at ``capacity`` per ``period`` seconds; an
attempt spends one and a success may give it back, so only failures count.
A :class:`Slots` counts what a key holds open at once (streams per user or
per device) and refuses past its limit.

Both live in one process: with several replicas behind a load balancer, each
replica keeps its own budget, so a client spread over *n* replicas gets up to
*n* times the budget. That still turns thousands of password guesses a minute
into a few dozen, which is the point; a shared budget would cost a database
or bus round trip on every attempt.

Pure: no I/O, no event loop; the clock is injected so tests step time by hand.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]
_EPSILON = 1e-9

MAX_KEYS = 100_000
"""Buckets kept per throttle. Past this, full buckets (no recent failures)
are forgotten first, then the least recently touched: a spray of made-up
usernames cannot grow memory without bound."""


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class Throttle:
    """``capacity`` attempts per ``period`` seconds per key, refilled smoothly."""

    def __init__(
        self,
        capacity: int,
        period: float = 60.0,
        *,
        clock: Clock = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if capacity < 1 or period <= 0:
            raise ValueError("a throttle needs a capacity of at least 1 and a positive period")
        self.capacity = capacity
        self.period = period
        self.clock = clock
        self.max_keys = max_keys
        self._rate = capacity / period
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, key: str) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.capacity), now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._prune()
        else:
            elapsed = max(0.0, now - bucket.stamp)
            bucket.tokens = min(float(self.capacity), bucket.tokens + elapsed * self._rate)
            bucket.stamp = now
            self._buckets.move_to_end(key)
        return bucket

    def retry_after(self, key: str) -> int | None:
        """Whole seconds until ``key`` may try again, or None if it may now."""
        bucket = self._bucket(key)
        if bucket.tokens >= 1.0 - _EPSILON:  # refills are float sums
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / self._rate))

    def spend(self, key: str) -> None:
        """One attempt (or one failure) of ``key``; never below empty."""
        bucket = self._bucket(key)
        bucket.tokens = max(0.0, bucket.tokens - 1.0)

    def refund(self, key: str) -> None:
        """Give back what :meth:`spend` took: the attempt succeeded."""
        bucket = self._bucket(key)
        bucket.tokens = min(float(self.capacity), bucket.tokens + 1.0)

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self) -> None:
        now = self.clock()
        for key in [
            k
            for k, b in self._buckets.items()
            if b.tokens + max(0.0, now - b.stamp) * self._rate >= self.capacity
        ]:
            del self._buckets[key]
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


class SlotsFull(Exception):
    """``key`` already holds ``limit`` slots."""

    def __init__(self, key: str, limit: int) -> None:
        super().__init__(f"{key} already holds {limit}")
        self.key = key
        self.limit = limit


class Slots:
    """At most ``limit`` open at once per key (streams of one user, of one device)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a slot limit must be at least 1")
        self.limit = limit
        self._held: dict[str, int] = {}

    def take(self, key: str) -> None:
        """Hold one more for ``key``; raises :class:`SlotsFull` at the limit."""
        held = self._held.get(key, 0)
        if held >= self.limit:
            raise SlotsFull(key, self.limit)
        self._held[key] = held + 1

    def release(self, key: str) -> None:
        held = self._held.get(key, 0) - 1
        if held > 0:
            self._held[key] = held
        else:
            self._held.pop(key, None)

    def held(self, key: str) -> int:
        return self._held.get(key, 0)
