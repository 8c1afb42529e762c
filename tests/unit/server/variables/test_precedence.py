"""Which value a device sees: device > selector > project > job environment >
Compose defaults (the last two applied by Compose interpolation)."""

from __future__ import annotations

from edgefleet.server.variables.precedence import (
    ScopedValue,
    environment,
    explain,
    overlay,
    service_environment,
)
from edgefleet.spec.compose import parse

PROJECT = [
    ScopedValue("LEVEL", "project"),
    ScopedValue("LEVEL", "site-a", "site=a"),
    ScopedValue("LEVEL", "site-a-arm", "site=a,arch=arm64"),
    ScopedValue("ONLY_PROJECT", "p"),
    ScopedValue("TIER", "not-test", "tier!=test"),
]


def test_device_beats_selector_beats_project() -> None:
    labels = {"site": "a", "arch": "arm64"}
    assert overlay(PROJECT, {}, labels)["LEVEL"] == "site-a-arm"  # the more specific selector
    assert overlay(PROJECT, {}, {"site": "a"})["LEVEL"] == "site-a"
    assert overlay(PROJECT, {}, {"site": "b"})["LEVEL"] == "project"
    assert overlay(PROJECT, {"LEVEL": "device"}, labels)["LEVEL"] == "device"
    assert overlay(PROJECT, {}, {"tier": "test"}).get("TIER") is None
    assert overlay(PROJECT, {}, {})["TIER"] == "not-test"  # != matches a missing label
    assert overlay(PROJECT, {}, {})["ONLY_PROJECT"] == "p"


def test_order_of_rows_does_not_matter() -> None:
    labels = {"site": "a", "arch": "arm64"}
    assert overlay(list(reversed(PROJECT)), {}, labels) == overlay(PROJECT, {}, labels)


def test_variables_beat_the_job_environment_and_compose_defaults() -> None:
    compose = (
        "services:\n  s:\n    image: x\n    command: [echo, '${LEVEL:-compose}']\n"
        "    environment: {FROM: '${FROM:-compose}', KEPT: '${KEPT:-compose}'}\n"
    )
    env = environment({"LEVEL": "job", "FROM": "job"}, overlay(PROJECT, {}, {"site": "a"}))
    spec, _ = parse(compose, environment=env)
    service = spec.services["s"]
    assert service.command == ["echo", "site-a"]
    assert service.environment == {"FROM": "job", "KEPT": "compose"}


def test_a_service_gets_only_the_variables_it_names() -> None:
    """Compose's value, then the job's environment, then the variables of the
    names the service has: an unrelated variable never touches it."""
    over = {"LEVEL": "device", "UNRELATED": "x"}
    got = service_environment({"LEVEL": "compose", "OWN": "1"}, {"LEVEL": "job", "J": "j"}, over)
    assert got == {"LEVEL": "device", "OWN": "1", "J": "j"}


def test_explain_names_where_each_value_comes_from() -> None:
    seen = explain(PROJECT, {"OWN": "d"}, {"site": "a"})
    assert seen["LEVEL"] == ("site-a", "selector site=a")
    assert seen["ONLY_PROJECT"] == ("p", "project")
    assert seen["OWN"] == ("d", "device")
