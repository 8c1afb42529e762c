"""The group commit (agent/data/commit.py) on a real buffer and its thread:
requests that queue while a group is written go together in the next, each
answered in order once durable; a failed write answers its whole group; a
stop refuses new requests and lets the queued ones finish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from edgefleet.agent.data.buffer import Buffer, Incoming, Stored
from edgefleet.agent.data.commit import GroupCommit
from edgefleet.agent.data.journal import decode
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

    monkeypatch.setattr(commit.buffer.journal, "append", no_room)
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
