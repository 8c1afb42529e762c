"""Group commit of POSTed records: one journal append and one fdatasync for
every request that queued while the last one ran.

    loop:   submit(incoming, done) --queue (lock)--> the first one starts a group:
              a journal append alone (Buffer.light), buffer free:
                _write_synced: seqs given and the entry encoded on the loop,
                  its pwrite + fdatasync on the sync thread (GIL released):
                  the loop keeps reading and parsing the next requests;
                  call_soon_threadsafe(_answer) once durable
                _write_here: a lone request on a quick disk: all on the loop
              else: _write_next, a job on the buffer's thread (it may move
                records into SQLite, evict, prepare a journal file), then
                call_soon_threadsafe(_finish) --queue not empty--> next group
    loop:   _finish: done(Stored | HttpError) for each, in order

Many clients: while one group's fdatasync runs on the sync thread, the loop
reads, parses and queues the next group's requests, so the disk's latency
overlaps the CPU instead of adding to it; one group is in flight at a time
(its seqs and record ids are settled before the next is prepared), and each
answer goes out only after the fdatasync that covers it.

A single client cannot be grouped, and nothing overlaps its fdatasync: a
thread hop (a wake-up of the sync thread, then of the loop) would only add
CPU to each of its requests. So a group of one request, after another group
of one, while the journal's fdatasync is quick (the last within
``INLINE_SECONDS``), is written by the loop itself (``_write_here``). A slow
disk (an SD card, a busy host) never blocks the loop: groups go to the sync
thread until one is quick again; a write that may run SQLite (a move, an
eviction: not :attr:`Buffer.light`) always runs on the buffer's thread. A
request on the listener's only connection (``submit(..., alone=True)``) has
no one to wait for: on a quick disk it is written within the read that
brought it, without even the loop pass.

The buffer's lock (:attr:`Buffer.lock`) is taken on the loop before a group
is prepared and released by the sync thread once the group is settled: the
uploader's calls on the buffer's thread wait for that one fdatasync. ``done``
is a plain callback: a request costs no future or task (the endpoint's
connection answers from it; :meth:`GroupCommit.store` wraps it for the h11
path).
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
from typing import Any, TypeVar

from edgefleet.agent.data.buffer import Buffer
from edgefleet.agent.data.errors import BufferError
from edgefleet.agent.data.records import Incoming, Planned, Stored
from edgefleet.agent.data.syncer import SyncThread
from edgefleet.agent.http_server import HttpError

log = logging.getLogger(__name__)

Done = Callable[[Stored | HttpError], None]
Waiting = tuple[Incoming, Done]  # a request queued for the group commit
Results = list[Stored | BufferError] | HttpError
T = TypeVar("T")
R = TypeVar("R")

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
        self._lone = False  # the last group was one request
        self._sync: SyncThread | None = None  # pwrite + fdatasync of _write_synced

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stopping = False
        if self._sync is None:
            self._sync = SyncThread()

    async def stop(self) -> None:
        """Refuse new requests (503) and wait until the queued ones are answered."""
        self._stopping = True
        while self._writing:
            await asyncio.sleep(0.01)
        sync, self._sync = self._sync, None
        if sync is not None:
            sync.stop()  # idle: nothing is written any more

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

    def submit(self, incoming: Incoming, done: Done, alone: bool = False) -> None:
        """Queue ``incoming`` for the next group; ``done`` is called on the loop
        once it is durable (or refused), never before this returns, unless
        ``alone``: the caller's is the only connection, so no request of
        another client can join the group, and on a quick disk with nothing
        being written the group is written (and ``done`` called) at once,
        without the loop pass that lets many clients' requests gather."""
        if self._stopping or self.loop is None:
            refusal = HttpError(503, "the agent is stopping; retry", {"retry-after": RETRY_AFTER})
            asyncio.get_running_loop().call_soon(done, refusal)
            return
        with self._lock:
            self._queue.append((incoming, done))
            if self._writing:
                return  # taken with the next group
            self._writing = True
        if alone and self._quick and self.buffer.light:
            self._write_here()
            return
        self._schedule()

    def _schedule(self, from_thread: bool = False) -> None:
        """Start the next group: on the loop and the sync thread if the write
        is light (a journal append alone), else on the buffer's thread."""
        assert self.loop is not None
        if not self.buffer.light:
            self._to_thread()
            return
        lone = self._quick and self._lone and len(self._queue) == 1  # a hint: no lock needed
        step = self._write_here if lone else self._write_synced
        if from_thread:
            self.loop.call_soon_threadsafe(step)
        else:
            self.loop.call_soon(step)

    def _to_thread(self) -> None:
        self.thread.submit(self._write_next).add_done_callback(_writer_died)

    def _take_group(self) -> list[Waiting]:
        """The next group (at least one request; at most ``GROUP_MAX`` requests and,
        past the first, ``GROUP_BYTES`` of records: a group is one journal entry,
        built in memory), taken off the queue; call with ``_lock`` held."""
        if len(self._queue) == 1:  # one request: the usual group of one client
            group, self._queue = self._queue, []
            return group
        size, end = 0, 0
        for incoming, _ in self._queue[:GROUP_MAX]:
            size += sum(len(text) for _, text in incoming.records)
            if end and size > GROUP_BYTES:
                break
            end += 1
        group, self._queue = self._queue[:end], self._queue[end:]
        return group

    def _write(self, move: bool) -> tuple[list[Waiting], Results]:
        """Take the next group and write it (the caller holds the buffer's lock)."""
        group = self._take()
        requests = [i for i, _ in group]
        return group, self._guarded(self._timed, self.buffer.write, requests, move)

    def _take(self) -> list[Waiting]:
        with self._lock:
            group = self._take_group()
        self._lone = len(group) == 1
        return group

    def _timed(self, write: Callable[[T, bool], R], arg: T, move: bool) -> R:
        """``write(arg, move)``; one slower than ``INLINE_SECONDS`` keeps lone
        groups off the loop."""
        begin = time.perf_counter()
        try:
            return write(arg, move)
        finally:
            self._quick = time.perf_counter() - begin < INLINE_SECONDS

    def _guarded(self, work: Callable[..., R], *args: Any) -> R | HttpError:
        """``work(*args)``, or the HttpError its failure is answered with."""
        try:
            return work(*args)
        except (sqlite3.Error, OSError) as exc:  # the journal, or SQLite
            return disk_error(exc)
        except Exception as exc:  # a bug: logged with its traceback, answered 500, next group
            log.exception("data endpoint: a group commit failed")
            return HttpError(500, f"internal error: {exc}")

    def _more(self) -> bool:
        """Whether requests wait for another group (else the writing stops)."""
        with self._lock:
            self._writing = bool(self._queue)
            return self._writing

    def _write_here(self) -> None:
        """One lone request written on the loop, fdatasync and all, unless a
        job of the buffer's thread holds the buffer (then the group goes to
        that thread, behind the job)."""
        if not self.buffer.lock.acquire(blocking=False):
            self._to_thread()
            return
        try:
            group, results = self._write(move=False)
        finally:
            self.buffer.lock.release()
        self._answer(group, results)  # answers may bring the next requests at once

    def _write_synced(self) -> None:
        """One group, prepared on the loop and made durable on the sync thread;
        a job of the buffer's thread holding the buffer sends the group there
        instead. The buffer stays locked until the group is settled
        (:meth:`_synced`): a move and a journal rotation in between could
        delete the file holding records not yet counted as stored."""
        assert self._sync is not None and self.loop is not None
        if not self.buffer.lock.acquire(blocking=False):
            self._to_thread()
            return
        group = self._take()
        planned = self._guarded(self.buffer.prepare, [i for i, _ in group])
        if isinstance(planned, HttpError) or not planned.data:  # nothing to write
            self._synced(group, planned, None, None)
            return

        def synced(failure: Exception | None, seconds: float) -> None:
            self._synced(group, planned, failure, seconds)

        self._sync.write(self.buffer.journal, planned.data, self.loop, synced)

    def _synced(
        self,
        group: list[Waiting],
        planned: Planned | HttpError,
        failure: Exception | None,
        seconds: float | None,
    ) -> None:
        """On the loop, once the group's entry is durable (or failed; ``seconds``
        None: there was nothing to write): settle it, free the buffer, answer,
        start the next group."""
        if seconds is not None:
            self._quick = seconds < INLINE_SECONDS
        try:
            results = planned if isinstance(planned, HttpError) else self._settled(planned, failure)
        finally:
            self.buffer.lock.release()
        self._answer(group, results)

    def _settled(self, planned: Planned, failure: Exception | None) -> Results:
        def settle() -> list[Stored | BufferError]:
            if failure is not None:
                raise failure
            return self.buffer.settle(planned, move=False)

        return self._guarded(settle)

    def _answer(self, group: list[Waiting], results: Results) -> None:
        """A group's answers, on the loop, then the next group."""
        try:
            self._finish(group, results)
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
