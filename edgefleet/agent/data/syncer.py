"""The data journal's sync thread: a group commit's ``pwrite`` + ``fdatasync``
off the event loop, so the loop reads and parses the next requests while the
disk works (see :mod:`edgefleet.agent.data.commit`).

It runs nothing but the journal's write: no executor, future or work item
per group, and as little Python as possible outside the two system calls
(both release the GIL), because every bytecode it runs is one the loop waits
for. The outcome goes back with one ``call_soon_threadsafe``::

    loop --put(journal, data, done)--> SimpleQueue --> this thread:
        Journal.write(data)  (pwrite + fdatasync)
        --call_soon_threadsafe(done, failure or None, seconds)--> loop
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable

from edgefleet.agent.data.journal import Journal

log = logging.getLogger(__name__)

Synced = Callable[[Exception | None, float], None]  # (what failed, how long the write took)
Job = tuple[Journal, bytes, asyncio.AbstractEventLoop, Synced]


class SyncThread:
    """One thread writing journal entries, in the order they were given."""

    def __init__(self, name: str = "data-sync") -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def write(
        self, journal: Journal, data: bytes, loop: asyncio.AbstractEventLoop, done: Synced
    ) -> None:
        """Write and fdatasync ``data`` to ``journal``; then ``done`` on ``loop``
        with the exception the write raised (None: durable) and its duration."""
        self._jobs.put((journal, data, loop, done))

    def stop(self) -> None:
        """End the thread once the writes given so far are done."""
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            journal, data, loop, done = job
            begin = time.perf_counter()
            failure: Exception | None = None
            try:
                journal.write(data)
            except OSError as exc:  # the disk's answer: the loop answers and logs it
                failure = exc
            except Exception as exc:  # a bug: its traceback here, and still an answer
                log.exception("data endpoint: the journal write failed unexpectedly")
                failure = exc
            try:
                loop.call_soon_threadsafe(done, failure, time.perf_counter() - begin)
            except RuntimeError:  # the loop is closed: nobody is left to answer
                log.critical("data endpoint: a group was written after its loop closed")
