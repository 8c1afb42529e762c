"""The alert state machine, pure: rules + observations + what fires now -> transitions.

::

    (no alert) --observation matches rule--> firing --no longer matches--> resolved
                                               |  (still matches: nothing, no message)

A rule matches an observation of its own kind and project when:

- ``device_offline``: the device has been offline at least ``for_seconds``;
- ``job_failed``:     a job's workload failed on the device (present = matches);
- ``disk_above``:     the device's latest disk use (%) is above ``threshold``;
- ``backlog_above``:  records waiting on the device exceed ``threshold``.

No I/O here, so every edge is unit-tested without a database or a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("device_offline", "job_failed", "disk_above", "backlog_above")


@dataclass(frozen=True)
class Rule:
    pk: int
    project_pk: int
    kind: str
    threshold: float | None = None
    for_seconds: float = 0.0


@dataclass(frozen=True)
class Observation:
    """One fact about one subject (``device:<id>`` or ``job:<id>/device:<id>``)."""

    project_pk: int
    kind: str
    subject: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Firing:
    rule_pk: int
    observation: Observation


@dataclass(frozen=True)
class Resolved:
    rule_pk: int
    subject: str


Transition = Firing | Resolved


def matches(rule: Rule, obs: Observation) -> bool:
    if rule.kind != obs.kind or rule.project_pk != obs.project_pk:
        return False
    if rule.kind == "device_offline":
        return obs.value >= rule.for_seconds
    if rule.kind == "job_failed":
        return True
    return rule.threshold is not None and obs.value > rule.threshold


def evaluate(
    rules: list[Rule], observations: list[Observation], previous: set[tuple[int, str]]
) -> list[Transition]:
    """``previous`` holds the (rule pk, subject) pairs firing now. Returns what
    starts firing and what resolves; a pair that keeps matching yields nothing."""
    current: dict[tuple[int, str], Observation] = {}
    for rule in rules:
        for obs in observations:
            if matches(rule, obs):
                current.setdefault((rule.pk, obs.subject), obs)
    out: list[Transition] = [
        Firing(key[0], obs) for key, obs in sorted(current.items()) if key not in previous
    ]
    out += [
        Resolved(pk, subject) for pk, subject in sorted(previous) if (pk, subject) not in current
    ]
    return out
