"""Calls that arrive together, answered together: one query for many callers.

A reconnect storm brings hundreds of handshakes within the same few
milliseconds, each wanting the same kind of read. Made one by one, each is a
database session of its own (a connection checkout, the statement, a fetch,
a rollback: several hops to the database thread apiece). A :class:`Grouped`
queues the calls: the first starts a task that hands everything queued to
``handle`` at once, and whatever arrives while that runs goes in the next
group. A lone call costs what it did (a group of one)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)


class Grouped(Generic[T, R]):
    def __init__(
        self, handle: Callable[[list[T]], Awaitable[Sequence[R]]], *, max_group: int, name: str
    ) -> None:
        """``handle`` answers a group in its order; what it raises, each caller
        of that group raises."""
        self._handle = handle
        self._max_group = max_group
        self._name = name
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, done))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain(), name=self._name)
        return await done

    async def _drain(self) -> None:
        while self._queue:
            group = self._queue[: self._max_group]
            del self._queue[: self._max_group]
            try:
                answers = await self._handle([item for item, _ in group])
                if len(answers) != len(group):
                    raise RuntimeError(
                        f"{self._name}: {len(answers)} answers to {len(group)} calls"
                    )
            except Exception as exc:  # every caller of the group raises it, logged once here
                log.exception("%s: a group of %d failed", self._name, len(group))
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
                continue
            except BaseException:  # cancelled (shutdown): nobody waits forever
                for _, done in group + self._queue:
                    done.cancel()
                raise
            for (_, done), answer in zip(group, answers, strict=True):
                if not done.done():  # a caller that left (cancelled) is skipped
                    done.set_result(answer)
