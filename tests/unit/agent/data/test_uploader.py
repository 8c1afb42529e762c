"""The uploader's gathering (agent/data/uploader.py) on a real buffer: a batch
is read once enough records wait, or once the longest gathering is over,
never later; records arriving meanwhile end the wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from edgefleet.agent.data import uploader as uploader_module
from edgefleet.agent.data.buffer import Buffer
from edgefleet.agent.data.records import Incoming
from edgefleet.agent.data.uploader import Uploader

T = TypeVar("T")


class Store:
    """The data part as the uploader sees it: a buffer, and calls on it."""

    def __init__(self, buffer: Buffer) -> None:
        self.buffer = buffer

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    buffer = Buffer(tmp_path / "buffer.db", 64 * 1024 * 1024)
    yield Store(buffer)
    buffer.close()


def write(buffer: Buffer, records: int) -> None:
    buffer.write([Incoming("j", "s", [(None, f'{{"n":{n}}}') for n in range(records)])])


async def test_a_batch_is_gathered_until_enough_records_wait(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploader_module, "GATHER", 0.01)
    monkeypatch.setattr(uploader_module, "GATHER_RECORDS", 50)
    monkeypatch.setattr(uploader_module, "GATHER_MAX", 600.0)
    uploader = Uploader(store, None)  # type: ignore[arg-type]  # no connection needed here
    gathering = asyncio.create_task(uploader._gather())
    write(store.buffer, 49)
    await asyncio.sleep(0.2)
    assert not gathering.done()  # 49 of 50: still gathering
    write(store.buffer, 1)
    await asyncio.wait_for(gathering, 30)  # 50 wait: read now, not after GATHER_MAX
    write(store.buffer, 60)
    await asyncio.wait_for(uploader._gather(), 30)  # enough wait already: no wait at all


async def test_a_lone_record_waits_no_longer_than_the_longest_gathering(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploader_module, "GATHER", 0.01)
    monkeypatch.setattr(uploader_module, "GATHER_MAX", 0.1)
    uploader = Uploader(store, None)  # type: ignore[arg-type]
    write(store.buffer, 1)
    await asyncio.wait_for(uploader._gather(), 30)
    assert store.buffer.pending == 1  # gathered, left for the batch to read
