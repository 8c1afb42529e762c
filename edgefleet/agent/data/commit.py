"""Group commit of POSTed records: one journal append and one fdatasync for
every request that queued while the last one ran.

    loop:   submit(incoming, done) --queue (lock)--> the first one starts a group:
              disk fast, buffer free: _write_here, on the loop (call_soon: the
                requests read in the same pass join it), no thread at all
              else: _write_next, a job on the buffer's thread, then
                call_soon_threadsafe(_finish) --queue not empty--> next job
    loop:   _finish: done(Stored | HttpError) for each, in order

A single client cannot be grouped: each of its requests paid two thread
hand-offs (a wake-up of the buffer thread, then of the loop) on top of its
fdatasync, about as much CPU as everything else it costs. So while the
journal's fdatasync is quick (the last group within ``INLINE_SECONDS``) and
no job of the buffer's thread holds the buffer (:attr:`Buffer.lock`), the
loop writes the group itself: the loop waits that long for the disk, as the
request did anyway. A slow disk (an SD card, a busy host) sends groups back
to the thread, which keeps the rest of the agent's loop free, until one is
quick again; a write that may run SQLite (a move, an eviction: not
:attr:`Buffer.light`) always runs there.

On the thread, each group is its own job, so the uploader's calls on the
same thread take their turn between groups; the next group starts as soon as
the last returns, and a whole group is answered with one wake-up of the loop.
``done`` is a plain callback: a request costs no future or task (the
endpoint's connection answers from it; :meth:`GroupCommit.store` wraps it for
the h11 path).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from edgefleet.agent.data.buffer import Buffer, Incoming, Stored
from edgefleet.agent.data.errors import BufferError
from edgefleet.agent.http_server import HttpError

log = logging.getLogger(__name__)

Done = Callable[[Stored | HttpError], None]
Waiting = tuple[Incoming, Done]  # a request queued for the group commit
Results = list[Stored | BufferError] | HttpError

GROUP_MAX = 256  # requests per group commit
GROUP_BYTES = 4 * 1024 * 1024  # record text per group commit (past its first request)
RETRY_AFTER = "10"
INLINE_SECONDS = 0.005  # a group's write (its fdatasync) the loop may wait for itself


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
        self._writing = False  # a group is being written, or scheduled to be
        self._stopping = False
        self._quick = True  # the last group's write took under INLINE_SECONDS

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
                return  # taken with the next group
            self._writing = True
        self._schedule()

    def _schedule(self, from_thread: bool = False) -> None:
        """Start the next group: on the loop if the disk is quick and the write
        light (a journal append alone), else on the thread."""
        assert self.loop is not None
        if not (self._quick and self.buffer.light):
            self._to_thread()
        elif from_thread:
            self.loop.call_soon_threadsafe(self._write_here)
        else:
            self.loop.call_soon(self._write_here)

    def _to_thread(self) -> None:
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

    def _write(self, move: bool) -> tuple[list[Waiting], Results]:
        """Take the next group and write it (the caller holds the buffer's
        lock); a write slower than ``INLINE_SECONDS`` keeps later groups on
        the thread."""
        with self._lock:
            group = self._take_group()
        results: Results
        begin = time.perf_counter()
        try:
            results = self.buffer.write([i for i, _ in group], move=move)
        except (sqlite3.Error, OSError) as exc:  # the journal, or SQLite
            results = disk_error(exc)
        except Exception as exc:  # a bug: logged with its traceback, answered 500, next group
            log.exception("data endpoint: a group commit failed")
            results = HttpError(500, f"internal error: {exc}")
        self._quick = time.perf_counter() - begin < INLINE_SECONDS
        return group, results

    def _more(self) -> bool:
        """Whether requests wait for another group (else the writing stops)."""
        with self._lock:
            self._writing = bool(self._queue)
            return self._writing

    def _write_here(self) -> None:
        """One group on the loop, unless a job of the thread holds the buffer
        (then the group goes to the thread, behind that job)."""
        if not self.buffer.lock.acquire(blocking=False):
            self._to_thread()
            return
        try:
            group, results = self._write(move=False)
        finally:
            self.buffer.lock.release()
        try:
            self._finish(group, results)  # answers may bring the next requests at once
        finally:
            if self._more():
                self._schedule()

    def _write_next(self) -> None:
        """One group, on the buffer's thread; the next is queued behind whatever
        else waits for the thread (or on the loop, the disk quick again)."""
        assert self.loop is not None
        with self.buffer.lock:
            group, results = self._write(move=True)
        self.loop.call_soon_threadsafe(self._finish, group, results)
        if self._more():
            self._schedule(from_thread=True)

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
