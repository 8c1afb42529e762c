"""The group commit (agent/data/commit.py) on a real buffer and its thread:
requests that queue while a group is written go together in the next, each
answered in order once durable; a failed write answers its whole group; a
stop refuses new requests and lets the queued ones finish; a group's
fdatasync runs on the sync thread while the loop reads on (a lone request on
a quick disk: on the loop itself), and on the buffer's thread when the write
is not a journal append alone."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from edgefleet.agent.data import commit as commit_module
from edgefleet.agent.data.buffer import Buffer
from edgefleet.agent.data.commit import GroupCommit
from edgefleet.agent.data.journal import decode
from edgefleet.agent.data.records import Incoming, Stored
from edgefleet.agent.http_server import HttpError


@pytest.fixture
async def commit(tmp_path: Path) -> AsyncIterator[GroupCommit]:
    buffer = Buffer(tmp_path / "buffer.db", 64 * 1024 * 1024)
    thread = ThreadPoolExecutor(1)
    group = GroupCommit(buffer, thread, lambda: None)
    group.start()
    yield group
    await group.stop()
    thread.submit(buffer.close).result()
    thread.shutdown()


async def test_requests_queued_meanwhile_share_one_append_and_are_answered_in_order(
    commit: GroupCommit,
) -> None:
    answers: list[tuple[int, Stored | HttpError]] = []
    for n in range(200):
        record = Incoming("j", "s", [(f"r{n}", f'{{"n":{n}}}')])
        commit.submit(record, lambda result, n=n: answers.append((n, result)))
    assert answers == []  # never answered before durable
    while len(answers) < 200:
        await asyncio.sleep(0.01)
    assert [n for n, _ in answers] == list(range(200))
    assert [r.seqs for _, r in answers if isinstance(r, Stored)] == [[n + 1] for n in range(200)]
    files = sorted((commit.buffer.journal.dir).iterdir())
    entries = [line for f in files for line in f.read_bytes().rstrip(b"\0").split(b"\n") if line]
    assert len(entries) < 200  # grouped: the first alone, the rest while it was written
    assert len([r for f in files for r in decode(f.read_bytes(), f.name)]) == 200
    again = await commit.store(Incoming("j", "s", [("r7", "{}")]))
    assert (again.seqs, again.duplicates) == ([8], 1)


async def test_a_failed_write_answers_its_whole_group(
    commit: GroupCommit, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_room(*_: object) -> None:  # a full disk: a fault a unit test cannot cause
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(commit.buffer.journal, "write", no_room)
    results = await asyncio.gather(
        *(commit.store(Incoming("j", "s", [(None, "{}")])) for _ in range(5)),
        return_exceptions=True,
    )
    assert all(isinstance(r, HttpError) and r.status == 507 for r in results), results
    monkeypatch.undo()
    assert (await commit.store(Incoming("j", "s", [(None, "{}")]))).seqs  # and the next works


async def test_stop_refuses_new_requests_after_the_queued_ones(commit: GroupCommit) -> None:
    queued = asyncio.ensure_future(commit.store(Incoming("j", "s", [(None, "{}")])))
    await asyncio.sleep(0)
    await commit.stop()
    assert queued.done() and queued.result().seqs == [1]
    with pytest.raises(HttpError) as refused:
        await commit.store(Incoming("j", "s", [(None, "{}")]))
    assert refused.value.status == 503 and refused.value.headers["retry-after"]


async def test_a_group_is_bounded_in_bytes_but_takes_any_one_request(
    commit: GroupCommit,
) -> None:
    big = Incoming("j", "s", [(None, "x" * (3 * 1024 * 1024))])
    small = Incoming("j", "s", [(None, "{}")])
    commit._queue = [(big, print), (big, print), (small, print)]
    group = commit._take_group()
    assert [i for i, _ in group] == [big] and [i for i, _ in commit._queue] == [big, small]
    group = commit._take_group()
    assert [i for i, _ in group] == [big, small] and commit._queue == []


async def _answered(commit: GroupCommit, within: float) -> bool:
    """Whether a request submitted now is answered within ``within`` seconds."""
    answers: list[Stored | HttpError] = []
    commit.submit(Incoming("j", "s", [(None, "{}")]), answers.append)
    for _ in range(int(within / 0.01)):
        await asyncio.sleep(0.01)
        if answers:
            assert isinstance(answers[0], Stored), answers
            return True
    return False


async def test_a_group_is_written_while_the_buffer_is_free_and_its_thread_busy(
    commit: GroupCommit,
) -> None:
    """A journal append needs the buffer, not its thread: a request is answered
    even with the buffer's thread busy on something that does not hold it."""
    release = threading.Event()
    commit.thread.submit(release.wait, 30)  # the buffer's only thread, occupied
    try:
        assert await _answered(commit, within=10)
    finally:
        release.set()


async def test_a_group_waits_for_the_thread_while_a_job_holds_the_buffer(
    commit: GroupCommit,
) -> None:
    release = threading.Event()

    def hold() -> None:
        with commit.buffer.lock:  # as DataService.call runs the uploader's calls
            release.wait(30)

    commit.thread.submit(hold)
    await asyncio.sleep(0.05)  # the job holds the buffer
    answers: list[Stored | HttpError] = []
    commit.submit(Incoming("j", "s", [(None, "{}")]), answers.append)
    await asyncio.sleep(0.2)
    assert answers == []  # not written beside the job
    release.set()
    while not answers:
        await asyncio.sleep(0.01)
    assert isinstance(answers[0], Stored) and answers[0].seqs == [1]


async def test_a_lone_request_is_written_on_the_loop_until_the_disk_is_slow(
    commit: GroupCommit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone client's request, after another lone one, is fdatasync'd by the
    loop itself (no thread hop); once a write is slow (a fault a unit test
    cannot cause: an SD card, a busy host) the next go to the sync thread, so
    a slow disk never holds the agent's loop."""
    real = os.fdatasync
    where: list[str] = []

    def traced(fd: int) -> None:
        where.append(threading.current_thread().name)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", traced)
    monkeypatch.setattr(commit_module, "INLINE_SECONDS", 10.0)  # quick, however busy this host
    assert await _answered(commit, within=10)  # the first: nothing known, to the sync thread
    assert await _answered(commit, within=10)
    assert where == ["data-sync", threading.current_thread().name]
    monkeypatch.setattr(commit_module, "INLINE_SECONDS", 0.0)  # every write is slow now
    assert await _answered(commit, within=10)  # on the loop, and found slow
    assert await _answered(commit, within=10)
    assert where[2:] == [threading.current_thread().name, "data-sync"]


async def test_the_loop_reads_on_while_a_group_is_fdatasynced_and_answers_wait_for_it(
    commit: GroupCommit, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.fdatasync
    syncing, release = threading.Event(), threading.Event()

    def held(fd: int) -> None:
        syncing.set()
        release.wait(30)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", held)
    answers: list[Stored | HttpError] = []
    for _ in range(3):
        commit.submit(Incoming("j", "s", [(None, "{}")]), answers.append)
    for _ in range(3000):  # the loop runs while the fdatasync waits
        if syncing.is_set():
            break
        await asyncio.sleep(0.01)
    assert syncing.is_set()
    for _ in range(3):
        commit.submit(Incoming("j", "s", [(None, "{}")]), answers.append)
    await asyncio.sleep(0.2)
    assert answers == []  # no answer before the fdatasync that covers it returned
    release.set()
    while len(answers) < 6:
        await asyncio.sleep(0.01)
    assert [a.seqs for a in answers if isinstance(a, Stored)] == [[n] for n in range(1, 7)]
    files = sorted(commit.buffer.journal.dir.iterdir())
    entries = [line for f in files for line in f.read_bytes().rstrip(b"\0").split(b"\n") if line]
    assert len(entries) == 2  # the three queued meanwhile: one group, one entry


async def test_a_write_that_must_prepare_a_journal_file_goes_to_the_thread(
    commit: GroupCommit,
) -> None:
    """A new journal file is 5 MiB of zeros and an fsync: never on the loop."""
    commit.buffer.journal.close()  # as after a checkpoint a reader blocked
    release = threading.Event()
    commit.thread.submit(release.wait, 30)
    try:
        assert not await _answered(commit, within=0.3)
    finally:
        release.set()
    while commit._writing:
        await asyncio.sleep(0.01)
    assert commit.buffer.journal.open and commit.buffer.light


async def test_a_request_of_the_only_connection_is_written_and_answered_at_once(
    commit: GroupCommit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``alone`` (the listener's only connection): on a quick disk the request
    is fdatasync'd and answered within ``submit``, no loop pass in between;
    without it, never before ``submit`` returns (many clients' requests gather
    in that pass); on a slow disk, not on the loop at all."""
    synced: list[str] = []
    real = os.fdatasync

    def traced(fd: int) -> None:
        synced.append(threading.current_thread().name)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", traced)
    monkeypatch.setattr(commit_module, "INLINE_SECONDS", 10.0)  # quick, however busy this host
    answers: list[Stored | HttpError] = []
    commit.submit(Incoming("j", "s", [(None, '{"n":1}')]), answers.append, alone=True)
    assert len(answers) == 1 and isinstance(answers[0], Stored) and answers[0].seqs == [1]
    assert synced == [threading.current_thread().name]  # durable before the answer
    commit.submit(Incoming("j", "s", [(None, '{"n":2}')]), answers.append)
    assert len(answers) == 1  # not alone: answered after a loop pass
    while len(answers) < 2:
        await asyncio.sleep(0.001)
    monkeypatch.setattr(commit_module, "INLINE_SECONDS", 0.0)  # every write is slow now
    assert await _answered(commit, within=10)  # found slow
    commit.submit(Incoming("j", "s", [(None, '{"n":4}')]), answers.append, alone=True)
    assert len(answers) == 2  # a slow disk never holds the loop, alone or not
    while len(answers) < 3:
        await asyncio.sleep(0.001)
    assert synced[-1] == "data-sync"
