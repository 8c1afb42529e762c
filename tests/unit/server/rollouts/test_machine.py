"""The staged-rollout state machine, without I/O (edgefleet.server.rollouts.machine)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edgefleet.server.rollouts import machine as m
from edgefleet.server.rollouts.schemas import RolloutIn

DEVICES = [f"d{n}" for n in range(6)]
NEW = "2.0"


def ok(at: float) -> m.Report:
    return m.Report(state="running", version=NEW, error=None, reported_at=at)


def bad(at: float) -> m.Report:
    return m.Report(state="running", version="1.0", error="service web exited", reported_at=at)


def observe(rollout: m.Rollout, settings: m.Settings, now: float, reports: dict[str, m.Report]):
    return m.handle(rollout, m.Observe(now=now, version=NEW, reports=reports), settings)


def test_batches_canaries_first_then_max_parallel() -> None:
    settings = m.Settings(max_parallel=2, canaries=1)
    assert m.plan_batches(DEVICES, settings) == [["d0"], ["d1", "d2"], ["d3", "d4"], ["d5"]]
    assert m.plan_batches(DEVICES, m.Settings(max_parallel=4)) == [DEVICES[:4], DEVICES[4:]]


def test_next_batch_only_after_min_healthy_time() -> None:
    settings = m.Settings(max_parallel=2, min_healthy_time=10)
    rollout, actions = m.begin(DEVICES, settings, now=0)
    assert actions == [m.Move(("d0", "d1"))]
    # Reports older than the move do not count: the device has not answered yet.
    assert observe(rollout, settings, 1, {"d0": ok(-1), "d1": ok(-1)}) == []
    assert observe(rollout, settings, 2, {"d0": ok(2), "d1": ok(2)}) == []
    assert rollout.healthy_since == 2
    assert observe(rollout, settings, 11, {"d0": ok(2), "d1": ok(2)}) == []
    actions = observe(rollout, settings, 12, {"d0": ok(2), "d1": ok(2)})
    assert actions == [m.BatchDone(0), m.Move(("d2", "d3"))]
    assert set(rollout.moved) == {"d0", "d1", "d2", "d3"}


def test_unhealthy_device_resets_the_healthy_clock() -> None:
    settings = m.Settings(max_parallel=2, min_healthy_time=10)
    rollout, _ = m.begin(DEVICES, settings, now=0)
    observe(rollout, settings, 2, {"d0": ok(2), "d1": ok(2)})
    starting = m.Report(state="starting", version=NEW, error=None, reported_at=5)
    observe(rollout, settings, 5, {"d0": ok(2), "d1": starting})
    assert rollout.healthy_since is None
    assert observe(rollout, settings, 13, {"d0": ok(2), "d1": ok(6)}) == []


def test_failure_pauses_and_later_batches_are_never_moved() -> None:
    settings = m.Settings(max_parallel=2, failure_threshold=1)
    rollout, _ = m.begin(DEVICES, settings, now=0)
    actions = observe(rollout, settings, 3, {"d0": bad(3), "d1": ok(3)})
    assert len(actions) == 1 and isinstance(actions[0], m.Paused)
    assert rollout.state == "paused" and rollout.failed == ["d0"]
    assert observe(rollout, settings, 100, {"d0": bad(3), "d1": ok(3)}) == []
    assert set(rollout.moved) == {"d0", "d1"}


def test_failure_with_auto_revert_reverts_moved_devices() -> None:
    settings = m.Settings(max_parallel=2, failure_threshold=2, auto_revert=True)
    rollout, _ = m.begin(DEVICES, settings, now=0)
    assert observe(rollout, settings, 3, {"d0": bad(3)}) == []  # 1 < threshold
    actions = observe(rollout, settings, 4, {"d0": bad(3), "d1": bad(4)})
    assert len(actions) == 1 and isinstance(actions[0], m.Revert)
    assert actions[0].devices == ("d0", "d1")
    assert rollout.state == "reverted" and rollout.moved == {}
    assert observe(rollout, settings, 5, {}) == []  # finished: nothing more


def test_pause_resume_abort() -> None:
    settings = m.Settings(max_parallel=3, min_healthy_time=0)
    rollout, _ = m.begin(DEVICES, settings, now=0)
    assert m.handle(rollout, m.Pause("by ann"), settings) == [m.Paused("by ann")]
    reports = {d: ok(1) for d in DEVICES}
    assert observe(rollout, settings, 2, reports) == []  # paused: no next batch
    m.handle(rollout, m.Resume(3), settings)
    assert rollout.state == "rolling"
    assert observe(rollout, settings, 4, reports) == [m.BatchDone(0), m.Move(("d3", "d4", "d5"))]
    actions = m.handle(rollout, m.Abort("by bob"), settings)
    assert actions == [m.Revert(tuple(DEVICES), "by bob")]
    assert rollout.state == "aborted"
    assert m.handle(rollout, m.Resume(5), settings) == []


def test_done_after_last_batch_and_state_round_trips_as_json() -> None:
    settings = m.Settings(max_parallel=4, min_healthy_time=0)
    rollout, _ = m.begin(DEVICES, settings, now=0)
    reports = {d: ok(1) for d in DEVICES}
    observe(rollout, settings, 1, reports)
    again = m.from_json(m.to_json(rollout))
    assert again == rollout
    assert observe(again, settings, 2, reports) == [m.BatchDone(1), m.Finished()]
    assert again.state == "done"


def test_no_devices_is_done_at_once() -> None:
    rollout, actions = m.begin([], m.Settings(), now=0)
    assert rollout.state == "done" and actions == [m.Finished()]


def test_failures_below_threshold_are_tolerated_and_resume_forgives() -> None:
    settings = m.Settings(max_parallel=2, min_healthy_time=0, failure_threshold=2)
    rollout, _ = m.begin(DEVICES, settings, now=0)
    # One failure of two allowed: the batch is through (the other device healthy).
    actions = observe(rollout, settings, 3, {"d0": bad(3), "d1": ok(3)})
    assert actions == [m.BatchDone(0), m.Move(("d2", "d3"))]
    actions = observe(rollout, settings, 4, {"d0": bad(3), "d1": ok(3), "d2": bad(4)})
    assert isinstance(actions[0], m.Paused) and rollout.failed == ["d0", "d2"]
    m.handle(rollout, m.Resume(5), settings)
    # Resumed: the same two failures do not pause it again at once.
    reports = {"d0": bad(3), "d1": ok(3), "d2": bad(4), "d3": ok(6)}
    assert observe(rollout, settings, 6, reports) == [m.BatchDone(1), m.Move(("d4", "d5"))]
    assert rollout.state == "rolling"


def test_fractional_threshold_is_a_share_of_the_devices() -> None:
    settings = m.Settings(max_parallel=6, failure_threshold=0.5)
    rollout, _ = m.begin(DEVICES, settings, now=0)
    assert m.threshold(rollout, settings) == 3
    tiny = m.Settings(failure_threshold=0.01)
    assert m.threshold(m.begin(DEVICES, tiny, now=0)[0], tiny) == 1


def test_rollout_settings_accept_durations_and_refuse_nonsense() -> None:
    parsed = RolloutIn.model_validate({"min_healthy_time": "2m", "lock_timeout": "1500ms"})
    assert parsed.min_healthy_time == 120 and parsed.lock_timeout == 1.5
    assert RolloutIn.model_validate({"failure_threshold": 2}).failure_threshold == 2
    for bad_value in ({"min_healthy_time": "soon"}, {"failure_threshold": 0}, {"canaries": -1}):
        with pytest.raises(ValidationError):
            RolloutIn.model_validate(bad_value)


def test_a_device_that_never_becomes_healthy_fails_at_the_deadline() -> None:
    settings = m.Settings(max_parallel=2, healthy_deadline=60, failure_threshold=1)
    rollout, _ = m.begin(DEVICES, settings, now=0)
    assert observe(rollout, settings, 59, {"d1": ok(1)}) == []  # d0 silent: still waiting
    actions = observe(rollout, settings, 61, {"d1": ok(1)})
    assert isinstance(actions[0], m.Paused) and rollout.failed == ["d0"]
