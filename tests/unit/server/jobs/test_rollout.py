"""A job's overall state from its devices' states (``jobs/rollout.py``), no database.

Each test states one rule of the module's diagram: what holds a job in
``deploying``, what makes it ``running``, ``completed`` or ``failed``, and
what is never derived (``cancelled``, ``expired``).
"""

from __future__ import annotations

import itertools

import pytest

from edgefleet.server.jobs.rollout import IN_PROGRESS, TERMINAL, DeviceView, aggregate, settled

V = "v2"


def row(
    state: str,
    *,
    version: str | None = V,
    error: str | None = None,
    eligible: bool = True,
    assigned: bool = True,
    count: int = 1,
) -> DeviceView:
    return DeviceView(
        state=state,
        eligible=eligible,
        assigned=assigned,
        version=version,
        error=error,
        count=count,
    )


# -- settled ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", IN_PROGRESS)
def test_a_device_still_working_is_not_settled(state: str) -> None:
    assert not settled(row(state), V)
    assert not settled(row(state, error="pull failed"), V)


def test_running_the_job_version_is_settled() -> None:
    assert settled(row("running"), V)


def test_running_an_older_version_without_error_is_still_rolling() -> None:
    assert not settled(row("running", version="v1"), V)
    assert not settled(row("running", version=None), V)


def test_an_error_with_the_old_version_still_serving_counts_as_settled() -> None:
    """The device tried, failed and kept v1 running: it is done trying."""
    assert settled(row("running", version="v1", error="image not found"), V)


@pytest.mark.parametrize("state", ["exited", "failed", "removed"])
def test_finished_states_are_settled_whatever_their_version(state: str) -> None:
    assert settled(row(state, version="v1"), V)


# -- states people and the clock set ---------------------------------------------------


@pytest.mark.parametrize("current", TERMINAL)
def test_cancelled_and_expired_are_never_overridden(current: str) -> None:
    rows = [row("running"), row("failed", error="boom")]
    assert aggregate(current, rows, V, waiting_for_start=False) == (current, None)
    assert aggregate(current, rows, V, waiting_for_start=True) == (current, None)
    assert aggregate(current, [], V, waiting_for_start=False) == (current, None)


def test_a_job_waiting_for_its_start_time_is_pending_whatever_its_devices_say() -> None:
    rows = [row("running"), row("failed", error="boom")]
    assert aggregate("running", rows, V, waiting_for_start=True) == ("pending", None)


# -- nothing to run on -----------------------------------------------------------------


def test_no_devices_at_all_is_pending() -> None:
    assert aggregate("pending", [], V, False) == ("pending", None)
    assert aggregate("running", [], V, False) == ("pending", None)


def test_devices_no_longer_assigned_do_not_count() -> None:
    rows = [
        row("failed", error="boom", assigned=False),
        row("running", assigned=False),
        row("failed", eligible=False, assigned=False, error="cannot run here"),
    ]
    assert aggregate("running", rows, V, False) == ("pending", None)


def test_only_ineligible_targets_fail_the_job_with_a_pointer_to_the_devices() -> None:
    rows = [row("failed", eligible=False, error="cannot run here: arch", count=3)]
    assert aggregate("pending", rows, V, False) == (
        "failed",
        "no targeted device can run this job (see each device's error)",
    )


def test_ineligible_devices_do_not_hold_the_job_in_deploying() -> None:
    rows = [
        row("running"),
        row("pending", eligible=False, error="cannot run here: memory"),
    ]
    assert aggregate("deploying", rows, V, False) == ("running", None)


# -- deploying -------------------------------------------------------------------------


@pytest.mark.parametrize("state", IN_PROGRESS)
def test_one_device_still_working_keeps_the_job_deploying(state: str) -> None:
    rows = [row("running", count=9), row(state)]
    assert aggregate("pending", rows, V, False) == ("deploying", None)


def test_a_device_rolling_to_the_new_version_keeps_the_job_deploying() -> None:
    rows = [row("running"), row("running", version="v1")]
    assert aggregate("running", rows, V, False) == ("deploying", None)


def test_deploying_reports_errors_seen_so_far() -> None:
    rows = [row("pulling", count=2), row("failed", error="pull failed")]
    assert aggregate("pending", rows, V, False) == (
        "deploying",
        "1 of 3 device(s) report an error",
    )


def test_an_unknown_device_state_keeps_the_job_deploying() -> None:
    """A state this module does not know (from a newer agent) is settled but
    matches no outcome: the job stays ``deploying`` rather than guessing."""
    rows = [row("running"), row("paused")]
    assert aggregate("running", rows, V, False) == ("deploying", None)


# -- outcomes --------------------------------------------------------------------------


def test_all_running_is_running() -> None:
    assert aggregate("deploying", [row("running", count=10_000)], V, False) == ("running", None)


def test_running_with_some_one_shots_exited_is_running() -> None:
    rows = [row("running"), row("exited")]
    assert aggregate("deploying", rows, V, False) == ("running", None)


def test_all_exited_is_completed() -> None:
    assert aggregate("running", [row("exited", count=4)], V, False) == ("completed", None)


def test_completed_still_reports_device_errors() -> None:
    rows = [row("exited", count=3), row("exited", error="exit code 1")]
    assert aggregate("running", rows, V, False) == (
        "completed",
        "1 of 4 device(s) report an error",
    )


def test_failed_everywhere_without_errors_gets_a_default_message() -> None:
    assert aggregate("deploying", [row("failed", count=2)], V, False) == (
        "failed",
        "the job's workloads failed on every device",
    )


@pytest.mark.parametrize(
    "states", [("failed", "exited"), ("failed", "removed"), ("removed",), ("exited", "removed")]
)
def test_nothing_running_and_something_failed_or_removed_is_failed(states: tuple[str, ...]) -> None:
    state, _ = aggregate("running", [row(s) for s in states], V, False)
    assert state == "failed"


def test_failed_reports_the_error_count_weighted_by_device_count() -> None:
    rows = [row("failed", error="crash", count=2), row("exited", count=3)]
    assert aggregate("running", rows, V, False) == ("failed", "2 of 5 device(s) report an error")


def test_running_with_errors_elsewhere_names_how_many() -> None:
    rows = [
        row("running", count=7),
        row("running", version="v1", error="image not found", count=3),
    ]
    assert aggregate("deploying", rows, V, False) == (
        "running",
        "3 of 10 device(s) report an error",
    )


def test_ineligible_devices_are_left_out_of_the_error_count() -> None:
    rows = [
        row("running", count=2),
        row("failed", eligible=False, error="cannot run here: arch", count=5),
    ]
    assert aggregate("deploying", rows, V, False) == ("running", None)


# -- properties ------------------------------------------------------------------------


def test_the_order_of_rows_does_not_matter() -> None:
    rows = [
        row("running", count=2),
        row("exited"),
        row("running", version="v1", error="boom"),
        row("failed", eligible=False, error="cannot run here"),
        row("failed", assigned=False),
    ]
    results = {aggregate("deploying", list(p), V, False) for p in itertools.permutations(rows)}
    assert results == {("running", "1 of 4 device(s) report an error")}


def test_aggregate_is_a_fixed_point_of_its_own_output() -> None:
    """The status pass feeds the stored state back in as ``current``; a derived
    state must not depend on it, or the job would flip between passes."""
    cases = [
        [row("running")],
        [row("exited")],
        [row("failed")],
        [row("pulling")],
        [row("failed", eligible=False)],
        [],
    ]
    for rows in cases:
        first = aggregate("pending", rows, V, False)
        assert aggregate(first[0], rows, V, False) == first
