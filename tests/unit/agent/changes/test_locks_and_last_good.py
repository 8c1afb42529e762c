"""Update locks' gate and the last-known-good store, on a real state dir."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from edgefleet.agent.changes.lastgood import LastGood
from edgefleet.agent.changes.locks import UpdateLocks
from edgefleet.agent.changes.plan import revision_of
from edgefleet.agent.state import StateDir
from edgefleet.spec.model import AppSpec
from edgefleet.wire.workload import JobAssignment


def assignment(version: str = "1", **extra: object) -> JobAssignment:
    return JobAssignment(
        job_id="j1",
        project_id="p",
        application="a",
        version=version,
        spec=AppSpec.model_validate({"services": {"app": {"image": f"busybox:{version}"}}}),
        **extra,  # type: ignore[arg-type]
    )


def test_gate_waits_while_held_until_the_deadline(tmp_path: Path) -> None:
    locks = UpdateLocks(StateDir(tmp_path))
    want = assignment(lock_timeout=30)
    assert locks.gate(want, now=0) is None  # no lock: go
    assert locks.take("j1").held
    reason = locks.gate(want, now=100)
    assert reason is not None and reason.startswith("waiting for update lock held since ")
    assert locks.gate(want, now=129) == reason  # same words every pass: no report flood
    assert locks.gate(want, now=130) is None  # the job's deadline passed
    assert locks.get("j1").held  # the lock itself stays the workload's


def test_release_and_override_end_the_wait(tmp_path: Path) -> None:
    locks = UpdateLocks(StateDir(tmp_path), default_timeout=1000)
    locks.take("j1")
    assert locks.gate(assignment(), now=0) is not None
    locks.release("j1")
    assert locks.gate(assignment(), now=1) is None
    locks.take("j1")
    taken = locks.get("j1").since
    assert taken is not None
    overridden = assignment(locks_overridden_at=taken + timedelta(seconds=1))
    assert locks.gate(overridden, now=2) is None
    # An override older than the lock does not release it.
    old = assignment(locks_overridden_at=datetime.now(UTC) - timedelta(hours=1))
    assert locks.gate(old, now=3) is not None


def test_locks_survive_an_agent_restart(tmp_path: Path) -> None:
    UpdateLocks(StateDir(tmp_path)).take("j1")
    again = UpdateLocks(StateDir(tmp_path))
    assert again.get("j1").held
    again.forget("j1")
    assert not UpdateLocks(StateDir(tmp_path)).get("j1").held


def test_last_good_is_kept_on_disk_per_job(tmp_path: Path) -> None:
    store = LastGood(StateDir(tmp_path))
    assert store.get("j1") is None
    store.record(assignment("1"))
    reopened = LastGood(StateDir(tmp_path))
    found = reopened.get("j1")
    assert found is not None and found.version == "1"
    assert reopened.revision("j1") == revision_of(assignment("1"))
    reopened.record(assignment("2"))
    assert LastGood(StateDir(tmp_path)).revision("j1") == revision_of(assignment("2"))
    reopened.forget("j1")
    assert LastGood(StateDir(tmp_path)).get("j1") is None


def test_unreadable_last_good_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "last_good.json").write_text('{"jobs": {"j1": {"version": 3}}}')
    assert LastGood(StateDir(tmp_path)).get("j1") is None


def test_a_lock_file_in_the_jobs_directory_holds_the_lock(tmp_path: Path) -> None:
    locks = UpdateLocks(StateDir(tmp_path))
    lock_dir = locks.dir_for("j1")
    assert lock_dir.stat().st_mode & 0o777 == 0o777  # any container user may write it
    assert not locks.get("j1").held
    (lock_dir / "updates.lock").touch()
    assert locks.get("j1").held
    assert locks.gate(assignment(lock_timeout=30), now=0) is not None
    (lock_dir / "updates.lock").unlink()
    assert locks.gate(assignment(lock_timeout=30), now=1) is None
    locks.forget("j1")
    assert not lock_dir.exists()
