"""Configuration rollouts without I/O: the machine with an unchanged version
(edgefleet.server.rollouts.machine) and the held previous inputs
(edgefleet.server.rollouts.inputs)."""

from __future__ import annotations

from edgefleet.server.rollouts import inputs
from edgefleet.server.rollouts import machine as m
from edgefleet.server.secrets.tables import ProjectSecret
from edgefleet.server.variables.precedence import ScopedValue, overlay

V = "1"  # a configuration change keeps the version
DEVICES = ["d0", "d1", "d2", "d3"]
SETTINGS = m.Settings(max_parallel=1, min_healthy_time=5, auto_revert=True)


def report(at: float, *, applied: bool = True, error: str | None = None) -> m.Report:
    return m.Report(state="running", version=V, error=error, reported_at=at, applied=applied)


def observe(rollout: m.Rollout, now: float, reports: dict[str, m.Report]) -> list[m.Action]:
    return m.handle(rollout, m.Observe(now=now, version=V, reports=reports), SETTINGS)


def test_same_version_is_not_healthy_until_the_moved_state_is_applied() -> None:
    """With the version unchanged, only having applied the desired state it
    was moved with tells a restarted device from one that has not heard yet."""
    rollout, actions = m.begin(DEVICES, SETTINGS, now=0)
    rollout.kind = "configuration"
    assert actions == [m.Move(("d0",))]
    assert observe(rollout, 1, {"d0": report(1, applied=False)}) == []
    assert observe(rollout, 10, {"d0": report(10, applied=False)}) == []
    assert rollout.healthy_since is None and rollout.current == 0
    assert observe(rollout, 11, {"d0": report(11)}) == []
    assert rollout.healthy_since == 11
    assert observe(rollout, 16, {"d0": report(16)}) == [m.BatchDone(0), m.Move(("d1",))]


def test_an_error_counts_even_before_applied_and_reverts_only_moved_devices() -> None:
    rollout, _ = m.begin(DEVICES, SETTINGS, now=0)
    rollout.kind = "configuration"
    actions = observe(rollout, 2, {"d0": report(2, applied=False, error="app exited 3")})
    assert actions == [m.Revert(("d0",), actions[0].reason)]  # type: ignore[union-attr]
    assert rollout.state == "reverted" and rollout.failed == ["d0"]
    assert rollout.moved == {}  # d1..d3 were never moved


def test_a_configuration_rollout_goes_one_device_at_a_time_to_done() -> None:
    rollout, _ = m.begin(DEVICES, SETTINGS, now=0)
    rollout.kind = "configuration"
    moved = ["d0"]
    t = 1.0
    while rollout.state == "rolling":
        actions = observe(rollout, t, {d: report(t) for d in moved})
        for action in actions:
            if isinstance(action, m.Move):
                assert len(action.devices) == 1
                moved += list(action.devices)
        t += 1
    assert rollout.state == "done" and moved == DEVICES
    assert m.from_json(m.to_json(rollout)).kind == "configuration"


def test_held_inputs_keep_the_older_previous_value() -> None:
    first = inputs.secret(
        "token",
        ProjectSecret(name="token", version=1, sealed="sealed-v1"),
        "secret token version 1 -> 2",
    )
    second = inputs.secret(
        "token",
        ProjectSecret(name="token", version=2, sealed="sealed-v2"),
        "secret token version 2 -> 3",
    )
    both = first.merged(second).merged(inputs.project_variable("LEVEL", "", None, "LEVEL set"))
    previous = both.secrets["token"]
    assert previous is not None and (previous.version, previous.sealed) == (1, "sealed-v1")
    assert both.changes == [
        "secret token version 1 -> 2",
        "secret token version 2 -> 3",
        "LEVEL set",
    ]
    # Round trip through the rollout's JSON (as stored in job_rollouts.progress).
    assert inputs.HeldInputs.model_validate(both.model_dump(mode="json")) == both


def test_held_inputs_laid_over_current_values() -> None:
    held = inputs.project_variable("LEVEL", "", "old", "LEVEL set").merged(
        inputs.project_variable("ZONE", "site=a", None, "ZONE for site=a set")
    )
    held = held.merged(inputs.device_variable("d1", "PIN", "7", "PIN of d1 set"))
    current = [ScopedValue("LEVEL", "new"), ScopedValue("ZONE", "z", "site=a")]
    scope = held.project_scope(current)
    assert overlay(scope, held.device_scope("d1", {"PIN": "8"}), {"site": "a"}) == {
        "LEVEL": "old",  # the previous value
        "PIN": "7",
    }  # ZONE did not exist before: gone
    assert held.device_scope("d2", {"PIN": "8"}) == {"PIN": "8"}  # not this device's


def test_held_secret_rows_replace_or_remove() -> None:
    current = {(1, "token"): ProjectSecret(project_pk=1, name="token", version=3, sealed="v3")}
    held = inputs.secret(
        "token", ProjectSecret(name="token", version=2, sealed="v2"), "token 2 -> 3"
    )
    row = held.secret_rows(1, current)[(1, "token")]
    assert (row.version, row.sealed) == (2, "v2")
    assert current[(1, "token")].version == 3  # the current rows are not touched
    created = inputs.secret("token", None, "token created")
    assert created.secret_rows(1, current) == {}
