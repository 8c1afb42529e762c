"""Group commit of POSTed records: one journal append and one fdatasync for
every request that queued while the last one ran.

    loop:   submit(incoming, done) --queue (lock)--> first one submits a job
    thread: _write_next: take a group --Buffer.write (append + fdatasync)-->
            call_soon_threadsafe(_finish) --queue not empty--> next job
    loop:   _finish: done(Stored | HttpError) for each, in order

The buffer's one thread runs each group as its own job, so the uploader's
calls on the same thread take their turn between groups; the next group
starts as soon as the last returns, with no wake-up of the loop in between,
and a whole group is answered with one wake-up of the loop. ``done`` is a
plain callback: a request costs no future or task (the endpoint's connection
answers from it; :meth:`GroupCommit.store` wraps it for the h11 path).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from edgefleet.agent.data.buffer import Buffer, BufferError, Incoming, Stored
from edgefleet.agent.http_server import HttpError

log = logging.getLogger(__name__)

Done = Callable[[Stored | HttpError], None]
Waiting = tuple[Incoming, Done]  # a request queued for the group commit
Results = list[Stored | BufferError] | HttpError

GROUP_MAX = 256  # requests per group commit
GROUP_BYTES = 4 * 1024 * 1024  # record text per group commit (past its first request)
RETRY_AFTER = "10"


class GroupCommit:
    """The queue of requests waiting to be written to ``buffer`` on ``thread``
    (the buffer's only thread); ``committed`` is called on the loop after each
    group (the uploader's kick)."""

    def __init__(self, buffer: Buffer, thread: ThreadPoolExecutor, committed: Callable[[], None]):
        self.buffer = buffer
        self.thread = thread
        self.committed = committed
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()  # the queue and the flag, shared with the thread
        self._queue: list[Waiting] = []
        self._writing = False  # a group's job is queued on the thread, or running
        self._stopping = False

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stopping = False

    async def stop(self) -> None:
        """Refuse new requests (503) and wait until the queued ones are answered."""
        self._stopping = True
        while self._writing:
            await asyncio.sleep(0.01)

    async def store(self, incoming: Incoming) -> Stored:
        """:meth:`submit`, awaited: the stored records, or HttpError raised."""
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()

        def done(result: Stored | HttpError) -> None:
            if future.done():
                return
            if isinstance(result, HttpError):
                future.set_exception(result)
            else:
                future.set_result(result)

        self.submit(incoming, done)
        return await future

    def submit(self, incoming: Incoming, done: Done) -> None:
        """Queue ``incoming`` for the next group; ``done`` is called on the loop
        once it is durable (or refused), never before this returns."""
        if self._stopping or self.loop is None:
            refusal = HttpError(503, "the agent is stopping; retry", {"retry-after": RETRY_AFTER})
            asyncio.get_running_loop().call_soon(done, refusal)
            return
        with self._lock:
            self._queue.append((incoming, done))
            if self._writing:
                return  # the thread takes it with the next group
            self._writing = True
        self.thread.submit(self._write_next).add_done_callback(_writer_died)

    def _take_group(self) -> list[Waiting]:
        """The next group (at least one request; at most ``GROUP_MAX`` requests and,
        past the first, ``GROUP_BYTES`` of records: a group is one journal entry,
        built in memory), taken off the queue; call with ``_lock`` held."""
        size, end = 0, 0
        for incoming, _ in self._queue[:GROUP_MAX]:
            size += sum(len(text) for _, text in incoming.records)
            if end and size > GROUP_BYTES:
                break
            end += 1
        group, self._queue = self._queue[:end], self._queue[end:]
        return group

    def _write_next(self) -> None:
        """One group, on the buffer's thread; the next is queued behind whatever
        else waits for the thread."""
        assert self.loop is not None
        with self._lock:
            group = self._take_group()
        results: Results
        try:
            results = self.buffer.write([i for i, _ in group])
        except (sqlite3.Error, OSError) as exc:  # the journal, or SQLite
            results = disk_error(exc)
        except Exception as exc:  # a bug: logged with its traceback, answered 500, next group
            log.exception("data endpoint: a group commit failed")
            results = HttpError(500, f"internal error: {exc}")
        self.loop.call_soon_threadsafe(self._finish, group, results)
        with self._lock:
            if not self._queue:
                self._writing = False
                return
        self.thread.submit(self._write_next).add_done_callback(_writer_died)

    def _finish(self, group: list[Waiting], results: Results) -> None:
        """Answer a group, in order, on the loop."""
        for n, (_, done) in enumerate(group):
            result = results if isinstance(results, HttpError) else results[n]
            if isinstance(result, BufferError):
                done(HttpError(507, result.message, {"retry-after": RETRY_AFTER}))
            else:
                done(result)
        self.committed()


def _writer_died(job: Future[None]) -> None:
    """What :meth:`GroupCommit._write_next` could not answer (the loop gone):
    said loudly, never lost."""
    exc = job.exception()
    if exc is not None:
        log.critical("data endpoint: the group commit failed", exc_info=exc)


def disk_error(exc: sqlite3.Error | OSError) -> HttpError:
    """A write that failed on the device, as the workload is told."""
    text = str(exc)
    if "full" in text or "disk" in text or getattr(exc, "errno", None) == errno.ENOSPC:
        return HttpError(507, f"the device's disk is full: {text}", {"retry-after": RETRY_AFTER})
    return HttpError(500, f"the device could not store the records: {text}")
