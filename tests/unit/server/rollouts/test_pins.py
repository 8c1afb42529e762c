"""What a staged rollout changes in one device's assignment, without a database
(edgefleet.server.rollouts.pins): held devices keep the previous version and
inputs, moved ones get the new, and every device carries the job's lock
settings."""

from __future__ import annotations

from datetime import UTC, datetime
from textwrap import dedent

from edgefleet.server.rollouts.inputs import HeldInputs, PreviousVariable
from edgefleet.server.rollouts.pins import Pin, Pins
from edgefleet.spec.compose import parse
from edgefleet.spec.model import AppSpec
from edgefleet.wire.workload import JobAssignment

JOB = 7
OVERRIDDEN = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def spec(image: str) -> AppSpec:
    found, _ = parse(dedent(f"services:\n  web:\n    image: {image}\n"))
    return found


def assignment() -> JobAssignment:
    return JobAssignment(
        job_id="j1", project_id="p1", application="web", version="2.0", spec=spec("web:2")
    )


def rolling(**changes: object) -> Pins:
    pin = Pin(
        version="1.0",
        spec=spec("web:1"),
        moved={"moved-dev"},
        lock_timeout=30.0,
        locks_overridden_at=OVERRIDDEN,
    )
    for name, value in changes.items():  # what this test's rollout differs in
        setattr(pin, name, value)
    return Pins(by_job={JOB: pin})


def test_a_job_without_a_rollout_is_left_as_it_is() -> None:
    new = assignment()
    assert Pins().adjust(JOB, "dev", new) is new
    assert rolling().adjust(JOB + 1, "dev", new) is new
    assert Pins().held(JOB, "dev") is None


def test_a_device_not_yet_moved_keeps_the_previous_version_and_spec() -> None:
    held = rolling().adjust(JOB, "waiting-dev", assignment())
    assert held.version == "1.0"
    assert held.spec.services["web"].image == "web:1"
    assert (held.lock_timeout, held.locks_overridden_at) == (30.0, OVERRIDDEN)


def test_a_moved_device_gets_the_new_version_with_the_lock_settings() -> None:
    moved = rolling().adjust(JOB, "moved-dev", assignment())
    assert moved.version == "2.0" and moved.spec.services["web"].image == "web:2"
    assert (moved.lock_timeout, moved.locks_overridden_at) == (30.0, OVERRIDDEN)


def test_a_finished_rollout_pins_no_version_but_still_carries_lock_settings() -> None:
    done = rolling(version=None, spec=None).adjust(JOB, "waiting-dev", assignment())
    assert done.version == "2.0"
    assert done.lock_timeout == 30.0


def test_the_original_assignment_is_never_changed_in_place() -> None:
    new = assignment()
    rolling().adjust(JOB, "waiting-dev", new)
    assert new.version == "2.0" and new.lock_timeout is None


def test_held_inputs_go_to_devices_not_yet_moved_only() -> None:
    inputs = HeldInputs(project_variables=[PreviousVariable(name="MODE", value="old")])
    pins = rolling(inputs=inputs)
    assert pins.held(JOB, "waiting-dev") == inputs
    assert pins.held(JOB, "moved-dev") is None
    assert rolling().held(JOB, "waiting-dev") is None  # a version rollout holds no inputs
