"""Share records: the server's index-only reading agrees with the full parse,
refusals included."""

from __future__ import annotations

import os

import pytest

from edgefleet.fed import codec
from edgefleet.fed.messages import SHARE_RECORD


def records(indices: list[int]) -> bytes:
    return codec.pack_shares((i, os.urandom(12), os.urandom(SHARE_RECORD - 16)) for i in indices)


@pytest.mark.parametrize("indices", [[], [0], [5, 3, 999, 0, 2**16 + 1]])
def test_record_indices_are_the_parsed_records_indices(indices: list[int]) -> None:
    data = records(indices)
    assert codec.record_indices(data, 2**17) == indices
    assert [index for index, _, _ in codec.unpack_shares(data, 2**17)] == indices


def test_record_indices_refuse_what_unpack_refuses() -> None:
    data = records([1, 2, 7])
    for bad, peers in [(data[:-1], 8), (data + b"\0", 8), (data, 7)]:
        with pytest.raises(codec.FrameError):
            codec.unpack_shares(bad, peers)
        with pytest.raises(codec.FrameError):
            codec.record_indices(bad, peers)
