"""The owner's privacy rules as the device applies them: the differencing attack
(four overlapping sums) refused, the query budget, the epsilon budget refusing
once spent, and all of it surviving a restart (a new Guard on the same file)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from edgefleet.agent.datasets.guard import Guard
from edgefleet.agent.datasets.ledger import LedgerFile
from edgefleet.agent.datasets.registry import DatasetSpec, Privacy
from edgefleet.fed.messages import Task


def spec(**privacy: object) -> DatasetSpec:
    return DatasetSpec(
        name="temps",
        source="csv",
        path="/x.csv",
        min_parties=3,
        privacy=Privacy.model_validate(privacy),
    )


def task(**fields: object) -> Task:
    return Task.model_validate(
        {"project": "p", "dataset": "temps", "op": "sum", "column": "t"} | fields
    )


def test_the_four_overlapping_sums_are_refused(tmp_path: Path) -> None:
    """ABC, ABD, ACD, BCD would give every value; the device answers only the first."""
    guard = Guard(LedgerFile(tmp_path))
    s = spec()
    assert guard.admit(s, task(), "f1", ["A", "B", "C"]) is None
    for n, parties in enumerate((["A", "B", "D"], ["A", "C", "D"], ["B", "C", "D"]), start=2):
        reason = guard.admit(s, task(), f"f{n}", parties)
        assert reason is not None and "differ" in reason and "f1" in reason
    # a mean is the same question (same rows): refused too; the same set again is not
    assert guard.admit(s, task(op="mean"), "f5", ["A", "B", "D"]) is not None
    assert guard.admit(s, task(op="mean"), "f6", ["A", "B", "C"]) is None
    # a set far enough away is fine, and another filter is another question
    assert guard.admit(s, task(), "f7", ["D", "E", "F"]) is None
    other = task(where=[{"column": "t", "op": ">", "value": 0.0}])
    assert guard.admit(s, other, "f8", ["A", "B", "D"]) is None


def test_a_dropout_does_not_make_a_difference(tmp_path: Path) -> None:
    """ABC with C dropped released AB; the unmask check then refuses ABC over the same question."""
    guard = Guard(LedgerFile(tmp_path))
    s = spec()
    assert guard.admit(s, task(), "f1", ["A", "B", "C"]) is None
    assert guard.narrow(s, task(), "f1", ["A", "B"]) is None  # survivors of f1
    assert guard.admit(s, task(), "f2", ["A", "B", "C"]) is not None
    assert guard.narrow(s, task(), "f3", ["A", "B", "C", "D"]) is not None


def test_query_budget_per_window(tmp_path: Path) -> None:
    guard = Guard(LedgerFile(tmp_path))
    s = spec(query_budget=2, budget_window=3600)
    assert guard.admit(s, task(), "f1", ["A", "B", "C"]) is None
    assert guard.admit(s, task(), "f2", ["A", "B", "C"]) is None
    reason = guard.admit(s, task(), "f3", ["A", "B", "C"])
    assert reason is not None and "query budget of 2" in reason


def test_epsilon_budget_refuses_once_spent_and_survives_a_restart(tmp_path: Path) -> None:
    s = spec(dp_epsilon=1.0)
    guard = Guard(LedgerFile(tmp_path))
    noisy = task(epsilon=0.4, bounds={"t": (0.0, 100.0)})
    assert "only with differential privacy" in (guard.admit(s, task(), "f0", ["A", "B", "C"]) or "")
    assert guard.admit(s, noisy, "f1", ["A", "B", "C"]) is None
    assert guard.admit(s, noisy, "f2", ["A", "B", "C"]) is None
    restarted = Guard(LedgerFile(tmp_path))  # a new agent process on the same state dir
    assert restarted.spent("temps") == pytest.approx((0.8, 2))
    reason = restarted.admit(s, noisy, "f3", ["A", "B", "C"])
    assert reason is not None and "privacy budget spent" in reason
    assert (
        restarted.admit(s, task(epsilon=0.2, bounds={"t": (0.0, 1.0)}), "f4", ["A", "B", "C"])
        is None
    )
    assert restarted.admit(s, task(epsilon=0.01, bounds={"t": (0.0, 1.0)}), "f5", ["A", "B", "C"])
    mode = stat.S_IMODE((tmp_path / "privacy.json").stat().st_mode)
    assert mode == 0o600


def test_a_damaged_ledger_refuses_instead_of_resetting(tmp_path: Path) -> None:
    (tmp_path / "privacy.json").write_text("{not json")
    reason = Guard(LedgerFile(tmp_path)).admit(spec(), task(), "f1", ["A", "B", "C"])
    assert reason is not None and "damaged" in reason


def test_a_query_that_ended_before_the_masked_input_is_refunded(tmp_path: Path) -> None:
    """ABD fails because A and B decline: D never sent a masked input, so the query
    costs D neither budget nor a party set that would block ABDE later."""
    guard = Guard(LedgerFile(tmp_path))
    s = spec(dp_epsilon=1.0, query_budget=1, budget_window=3600)
    noisy = task(epsilon=0.7, bounds={"t": (0.0, 1.0)})
    assert guard.admit(s, noisy, "f1", ["A", "B", "D"]) is None
    assert guard.admit(s, noisy, "f2", ["A", "B", "D", "E", "F"]) is not None  # budget spent
    guard.refund("temps", noisy, "f1")
    assert Guard(LedgerFile(tmp_path)).spent("temps") == (0.0, 0)
    assert guard.admit(s, noisy, "f2", ["A", "B", "D", "E"]) is None
