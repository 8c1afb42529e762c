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


def _replacements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        calls.append(str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return calls


DESIRED_LONG = {"jobs": [{"id": f"j{i}", "spec": "x" * 50} for i in range(20)]}
DESIRED_SHORT = {"jobs": []}


def test_a_devices_state_files_are_replaced_atomically_and_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = StateDir(tmp_path / "state")
    replaced, synced = _replacements(monkeypatch), _counting_fsync(monkeypatch)
    state.save_json("applied.json", DESIRED_LONG)
    state.save_json("applied.json", DESIRED_SHORT)
    assert state.load_json("applied.json", None) == DESIRED_SHORT
    assert len(replaced) == 2 and len(synced) == 4


def test_the_simulators_state_files_are_rewritten_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No rename (~0.8 ms of ext4's time each) and no fsync per file in the
    simulator; a shorter content leaves no tail of the longer one before it,
    and a file in a directory not made yet gets its directory."""
    state = StateDir(tmp_path / "state", durable=False)
    replaced, synced = _replacements(monkeypatch), _counting_fsync(monkeypatch)
    state.save_json("applied.json", DESIRED_LONG)
    state.save_json("applied.json", DESIRED_SHORT)
    assert state.load_json("applied.json", None) == DESIRED_SHORT
    nested = state.root / "schedule" / "runs.json"
    state.write(nested, b"{}")
    assert nested.read_bytes() == b"{}"
    assert replaced == [] and synced == []
    assert stat.S_IMODE((state.root / "applied.json").stat().st_mode) == 0o600
    # identities stay atomic even here: a torn one would lose the device
    state.save_identity(IDENTITY)
    assert replaced == [str(state.identity_path)]


def test_the_simulators_in_place_write_does_not_follow_a_symlink(tmp_path: Path) -> None:
    """Writing in place must not become a write through a link planted where a
    state file was (the atomic replace never followed one)."""
    state = StateDir(tmp_path / "state", durable=False)
    target = tmp_path / "elsewhere.txt"
    target.write_bytes(b"untouched")
    (state.root / "applied.json").symlink_to(target)
    with pytest.raises(OSError):
        state.save_json("applied.json", {"generation": 1})
    assert target.read_bytes() == b"untouched"
