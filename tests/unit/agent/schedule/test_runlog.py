"""The device's run log: bounded, atomic, survives a restart, forgets only
what the server acknowledged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from edgefleet.agent.schedule.runlog import FILE, RunLog
from edgefleet.agent.state import StateDir
from edgefleet.wire.schedule import RunRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run(n: int, job: str = "j1") -> RunRecord:
    return RunRecord(
        id=f"r{n}", job=job, scheduled=T0 + timedelta(seconds=n), state="ok", exit_code=0
    )


def test_kept_across_restarts_until_acknowledged(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    book = RunLog(state, limit=10)
    for n in range(3):
        book.add(run(n))
    again = RunLog(state, limit=10)  # a new agent process
    assert [r.id for r in again.pending(10)] == ["r0", "r1", "r2"]
    assert again.fired() == {"j1": T0 + timedelta(seconds=2)}
    assert again.ack(["r0", "r2", "unknown"]) == 2
    assert [r.id for r in RunLog(state, limit=10).pending(10)] == ["r1"]
    assert (tmp_path / FILE).stat().st_mode & 0o777 == 0o600


def test_bounded_oldest_dropped_and_counted(tmp_path: Path) -> None:
    book = RunLog(StateDir(tmp_path), limit=5)
    for n in range(12):
        book.add(run(n))
    assert [r.id for r in book.pending(100)] == [f"r{n}" for n in range(7, 12)]
    assert book.dropped == 7
    assert book.last("j1") is not None and book.last("j1").id == "r11"  # type: ignore[union-attr]


def test_unreadable_file_is_kept_aside(tmp_path: Path) -> None:
    (tmp_path / FILE).write_text("{not json")
    book = RunLog(StateDir(tmp_path), limit=5)
    assert book.pending(5) == []
    assert (tmp_path / "schedule-runs.corrupt").exists()


def test_forgetting_jobs_keeps_their_unreported_runs(tmp_path: Path) -> None:
    book = RunLog(StateDir(tmp_path), limit=5)
    book.add(run(1, "gone"))
    book.forget_jobs(set())
    assert book.last("gone") is None and book.fired() == {}
    assert [r.id for r in book.pending(5)] == ["r1"]


def test_a_begun_run_survives_a_crash_until_settled(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    begun = run(1).model_copy(update={"state": "failed", "error": "interrupted"})
    RunLog(state, limit=5).begin(begun)
    after_crash = RunLog(state, limit=5)
    assert [r.id for r in after_crash.interrupted()] == ["r1"]
    assert after_crash.pending(5) == []  # not reported until settled
    after_crash.add(begun.model_copy(update={"state": "ok", "exit_code": 0, "error": None}))
    again = RunLog(state, limit=5)
    assert again.interrupted() == []
    assert [(r.id, r.state) for r in again.pending(5)] == [("r1", "ok")]
