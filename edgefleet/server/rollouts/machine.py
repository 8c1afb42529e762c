"""A staged rollout as a pure state machine: ``handle(state, event) -> actions``.

No I/O and no clock of its own: the driver (:mod:`.driver`) feeds it what the
devices report and the time, and carries out what it answers. That is what
lets the whole batch logic be unit-tested in milliseconds.

    begin --> rolling --(batch healthy for min_healthy_time)--> next batch ... --> done
                 |  ^
          pause  |  | resume
                 v  |
               paused <--(failures >= failure_threshold, no auto_revert)-- rolling
                 |
                 | abort, or failures >= threshold with auto_revert
                 v
        reverted / aborted  (every moved device back on the previous version)

A device is *moved* when it is told to run the new version; devices of
batches not yet started are never moved, so a failure in batch 1 leaves
batches 2..n exactly as they were. Batch 1 holds ``canaries`` devices when
set, else ``max_parallel``; later batches ``max_parallel`` each.

A device counts as healthy on the new version when its report, sent after it
was moved, shows it running that version with no error, and it has applied
the desired state it was moved with; as failed when such a report carries an
error while no change is in progress on it.

A *configuration* rollout (``kind``; a rotated secret or a changed variable)
runs the same way with the version unchanged: there, "the new version" is the
new resolved inputs, and having applied the desired state it was moved with
is what tells a restarted device from one that has not heard of the change
yet. What the held-back devices keep (``held``) is opaque to the machine
(:mod:`.inputs`). Failures below
``failure_threshold`` are tolerated (the batch is through when each device is
healthy or failed); ``resume`` after a pause forgives the failures so far.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter

RolloutState = Literal["rolling", "paused", "done", "reverted", "aborted"]
ACTIVE: tuple[str, ...] = ("rolling", "paused")
REVERTED: tuple[str, ...] = ("reverted", "aborted")
IN_PROGRESS = ("pending", "pulling", "starting")


@dataclass(frozen=True)
class Settings:
    max_parallel: int = 1
    canaries: int = 0
    min_healthy_time: float = 10.0
    failure_threshold: float = 1  # devices; below 1, a fraction of the rollout's devices
    auto_revert: bool = False
    healthy_deadline: float = 1800.0  # a moved device not healthy by then counts as failed


@dataclass
class Rollout:
    """The rollout's whole state; stored as JSON by the driver."""

    state: RolloutState
    batches: list[list[str]]
    current: int = 0
    moved: dict[str, float] = field(default_factory=dict)  # device -> when it was moved
    failed: list[str] = field(default_factory=list)
    forgiven: int = 0  # failures counted before the last resume
    healthy_since: float | None = None
    reason: str | None = None
    kind: Literal["version", "configuration"] = "version"
    # device -> its desired-state generation once moved (set by the driver)
    generations: dict[str, int] = field(default_factory=dict)
    held: dict[str, Any] = field(default_factory=dict)  # previous inputs (.inputs)


@dataclass(frozen=True)
class Report:
    """What the driver knows of one device of the job."""

    state: str
    version: str | None
    error: str | None
    reported_at: float
    applied: bool = True  # it applied the desired state it was moved with


# -- events -------------------------------------------------------------------------


@dataclass(frozen=True)
class Observe:
    """The devices' latest reports, at ``now`` (sent on every driver pass)."""

    now: float
    version: str
    reports: dict[str, Report]


@dataclass(frozen=True)
class Pause:
    reason: str


@dataclass(frozen=True)
class Resume:
    now: float


@dataclass(frozen=True)
class Abort:
    reason: str


Event = Observe | Pause | Resume | Abort

# -- actions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """Tell these devices to run the new version."""

    devices: tuple[str, ...]


@dataclass(frozen=True)
class Revert:
    """Put every moved device (and the job) back on the previous version."""

    devices: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Paused:
    reason: str


@dataclass(frozen=True)
class Finished:
    pass


@dataclass(frozen=True)
class BatchDone:
    index: int


Action = Move | Revert | Paused | Finished | BatchDone


def plan_batches(devices: list[str], settings: Settings) -> list[list[str]]:
    """Devices in a stable order, cut into batches: canaries first."""
    batches: list[list[str]] = []
    rest = list(devices)
    if settings.canaries > 0 and rest:
        batches.append(rest[: settings.canaries])
        rest = rest[settings.canaries :]
    size = max(1, settings.max_parallel)
    while rest:
        batches.append(rest[:size])
        rest = rest[size:]
    return batches


def begin(devices: list[str], settings: Settings, now: float) -> tuple[Rollout, list[Action]]:
    """A new rollout over ``devices``: the first batch is moved at once."""
    rollout = Rollout(state="rolling", batches=plan_batches(devices, settings))
    if not rollout.batches:
        rollout.state = "done"
        return rollout, [Finished()]
    return rollout, _start_batch(rollout, now)


def _start_batch(rollout: Rollout, now: float) -> list[Action]:
    batch = rollout.batches[rollout.current]
    for device in batch:
        rollout.moved.setdefault(device, now)
    rollout.healthy_since = None
    return [Move(tuple(batch))]


def handle(rollout: Rollout, event: Event, settings: Settings) -> list[Action]:
    """Apply ``event`` to ``rollout`` (mutated in place); the actions to carry out."""
    if rollout.state not in ACTIVE:
        return []
    if isinstance(event, Pause):
        if rollout.state == "rolling":
            rollout.state, rollout.reason = "paused", event.reason
            return [Paused(event.reason)]
        return []
    if isinstance(event, Resume):
        if rollout.state == "paused":
            rollout.state, rollout.reason = "rolling", None
            rollout.healthy_since = None
            # Resuming means "go on anyway": failures so far no longer count
            # toward the threshold (they stay listed).
            rollout.forgiven = len(rollout.failed)
        return []
    if isinstance(event, Abort):
        return _revert(rollout, "aborted", event.reason)
    return _observe(rollout, event, settings)


def _revert(rollout: Rollout, state: RolloutState, reason: str) -> list[Action]:
    moved = tuple(rollout.moved)
    rollout.state, rollout.reason = state, reason
    rollout.moved = {}
    return [Revert(moved, reason)]


def _health(
    report: Report | None, moved_at: float, version: str, now: float, deadline: float
) -> str:
    """'healthy', 'failed' or 'waiting' for one moved device; waiting past the
    deadline (offline, stuck pulling) is failed, so a rollout never stalls."""
    verdict = _verdict(report, moved_at, version)
    if verdict == "waiting" and deadline > 0 and now - moved_at > deadline:
        return "failed"
    return verdict


def _verdict(report: Report | None, moved_at: float, version: str) -> str:
    if report is None or report.reported_at < moved_at:
        return "waiting"
    if report.state in IN_PROGRESS:
        return "waiting"
    if not report.applied and not report.error:
        return "waiting"  # the report predates the change reaching the device
    if report.error:
        return "failed"
    if report.state in ("running", "exited") and report.version == version:
        return "healthy"
    if report.state == "failed":
        return "failed"
    return "waiting"


def threshold(rollout: Rollout, settings: Settings) -> int:
    """Failed devices that stop the rollout: a count, or (below 1) a fraction
    of the rollout's devices, at least one."""
    if settings.failure_threshold >= 1:
        return int(settings.failure_threshold)
    total = sum(len(b) for b in rollout.batches)
    return max(1, math.ceil(settings.failure_threshold * total))


def _observe(rollout: Rollout, event: Observe, settings: Settings) -> list[Action]:
    actions: list[Action] = []
    for device, moved_at in rollout.moved.items():
        verdict = _health(
            event.reports.get(device), moved_at, event.version, event.now, settings.healthy_deadline
        )
        if verdict == "failed" and device not in rollout.failed:
            rollout.failed.append(device)
    if len(rollout.failed) - rollout.forgiven >= threshold(rollout, settings):
        reason = (
            f"{len(rollout.failed)} device(s) failed on the new version "
            f"({', '.join(rollout.failed)}); failure_threshold is {settings.failure_threshold}"
        )
        if settings.auto_revert:
            return _revert(rollout, "reverted", reason)
        if rollout.state == "rolling":
            rollout.state, rollout.reason = "paused", reason
            return [Paused(reason)]
        return []
    if rollout.state != "rolling":
        return actions
    batch = rollout.batches[rollout.current]
    verdicts = [
        _health(
            event.reports.get(d),
            rollout.moved.get(d, event.now),
            event.version,
            event.now,
            settings.healthy_deadline,
        )
        for d in batch
    ]
    # Failures below the threshold are tolerated: a batch is through when each
    # of its devices is healthy or has failed, the healthy ones for long enough.
    if all(v == "healthy" or d in rollout.failed for d, v in zip(batch, verdicts, strict=True)):
        if rollout.healthy_since is None:
            rollout.healthy_since = event.now
        if event.now - rollout.healthy_since >= settings.min_healthy_time:
            actions.append(BatchDone(rollout.current))
            rollout.current += 1
            if rollout.current >= len(rollout.batches):
                rollout.state, rollout.healthy_since = "done", None
                actions.append(Finished())
            else:
                actions += _start_batch(rollout, event.now)
    else:
        rollout.healthy_since = None
    return actions


_ADAPTER: TypeAdapter[Rollout] = TypeAdapter(Rollout)


def to_json(rollout: Rollout) -> dict[str, Any]:
    return _ADAPTER.dump_python(rollout, mode="json")  # type: ignore[no-any-return]


def from_json(data: dict[str, Any]) -> Rollout:
    return _ADAPTER.validate_python(data)
