"""The state dir's identity: durable on a device, without fsync in the simulator.

The fsyncs are counted by wrapping the real ``os.fsync`` (it still runs):
whether data reached the disk is not observable from a test, the calls are."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edgefleet.agent.state import Identity, StateDir

IDENTITY = Identity(
    device_id="d_1",
    credential="efd_secret",
    name="dev-1",
    project="default",
    servers=["http://127.0.0.1:8400"],
    private_key="cHJpdmF0ZQ==",
    public_key="cHVibGlj",
)


def _counting_fsync(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


@pytest.mark.parametrize(("durable", "fsyncs"), [(True, 2), (False, 0)])
def test_save_identity_follows_the_state_dirs_durability(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool, fsyncs: int
) -> None:
    """A device's identity is on disk (file and rename) before enrollment is
    done; the simulator's thousand identities skip the two fsyncs, which
    blocked its event loop for ~10 ms per device on a busy disk."""
    state = StateDir(tmp_path / "state", durable=durable)
    calls = _counting_fsync(monkeypatch)
    state.save_identity(IDENTITY)
    assert len(calls) == fsyncs
    assert state.load_identity() == IDENTITY
    assert stat.S_IMODE(state.identity_path.stat().st_mode) == 0o600
    assert not list(state.root.glob(".*.tmp"))  # replaced atomically, nothing left over


def test_an_agents_state_dir_is_durable_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the simulator turns durability off; a real agent's identity is synced."""
    state = StateDir(tmp_path / "state")
    calls = _counting_fsync(monkeypatch)
    state.save_identity(IDENTITY)
    assert len(calls) == 2
