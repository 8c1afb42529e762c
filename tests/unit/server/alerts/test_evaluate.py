"""The alert state machine without a database: every edge of firing/resolved."""

from __future__ import annotations

from edgefleet.server.alerts.evaluate import Firing, Observation, Resolved, Rule, evaluate

OFFLINE = Rule(pk=1, project_pk=10, kind="device_offline", for_seconds=60)
DISK = Rule(pk=2, project_pk=10, kind="disk_above", threshold=90)
FAILED = Rule(pk=3, project_pk=10, kind="job_failed")
BACKLOG = Rule(pk=4, project_pk=10, kind="backlog_above", threshold=1000)


def obs(kind: str, subject: str, value: float, project: int = 10) -> Observation:
    return Observation(project, kind, subject, value)


def test_offline_fires_only_after_for_seconds() -> None:
    assert evaluate([OFFLINE], [obs("device_offline", "device:a", 59)], set()) == []
    out = evaluate([OFFLINE], [obs("device_offline", "device:a", 60)], set())
    assert out == [Firing(1, obs("device_offline", "device:a", 60))]


def test_still_firing_yields_nothing_and_clearing_resolves() -> None:
    firing = {(1, "device:a")}
    assert evaluate([OFFLINE], [obs("device_offline", "device:a", 600)], firing) == []
    assert evaluate([OFFLINE], [], firing) == [Resolved(1, "device:a")]


def test_thresholds_are_strictly_above() -> None:
    rules = [DISK, BACKLOG]
    at = [obs("disk_above", "device:a", 90), obs("backlog_above", "device:a", 1000)]
    assert evaluate(rules, at, set()) == []
    above = [obs("disk_above", "device:a", 90.5), obs("backlog_above", "device:a", 1001)]
    assert {t.rule_pk for t in evaluate(rules, above, set())} == {2, 4}


def test_job_failed_fires_per_job_device() -> None:
    out = evaluate(
        [FAILED],
        [obs("job_failed", "job:j1/device:a", 1), obs("job_failed", "job:j1/device:b", 1)],
        set(),
    )
    assert [t.observation.subject for t in out if isinstance(t, Firing)] == [
        "job:j1/device:a",
        "job:j1/device:b",
    ]


def test_rules_see_only_their_project_and_kind() -> None:
    other_project = obs("device_offline", "device:x", 3600, project=11)
    wrong_kind = obs("disk_above", "device:a", 99)
    assert evaluate([OFFLINE], [other_project, wrong_kind], set()) == []


def test_a_deleted_or_disabled_rule_resolves_its_alerts() -> None:
    assert evaluate([], [obs("device_offline", "device:a", 999)], {(1, "device:a")}) == [
        Resolved(1, "device:a")
    ]


def test_two_rules_on_one_subject_are_separate_alerts() -> None:
    strict = Rule(pk=5, project_pk=10, kind="device_offline", for_seconds=10)
    out = evaluate([OFFLINE, strict], [obs("device_offline", "device:a", 30)], {(1, "device:a")})
    assert out == [Firing(5, obs("device_offline", "device:a", 30)), Resolved(1, "device:a")]
