"""What the server answers about applications, their versions and build contexts, and jobs.

Typed views of the JSON bodies (generated once from the server's OpenAPI
schemas): plain dicts at run time, so ``result["id"]`` keeps working, and
mypy checks every key a caller reads.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Application(TypedDict):
    """An application and its versions."""

    id: str
    name: str
    project: str
    project_id: str
    description: str
    created_at: str
    versions: list[str]
    latest: str | None


class Finding(TypedDict):
    """One error or warning found in a Compose file or spec."""

    level: str
    key: str
    line: int | None
    column: int | None
    message: str


class Version(TypedDict):
    """An immutable version of an application."""

    id: str
    version: str
    created_at: str
    created_by: str
    services: list[str]
    warnings: list[Finding]
    spec: dict[str, Any] | None
    compose: str | None


class Validation(TypedDict):
    """What validating a Compose file or spec found."""

    valid: bool
    findings: list[Finding]
    services: list[str]


class BuildContext(TypedDict):
    """An uploaded build context: pass ``context`` to a version."""

    context: str
    size: int
    project: str


class ServiceStatus(TypedDict):
    """One service of a job's workload on a device."""

    state: str
    restarts: int
    exit_code: int | None
    image: str | None
    health: str | None
    error: str | None
    held_locally: bool
    progress: str | None


class JobRun(TypedDict):
    """One fire of a periodic job on one device."""

    id: str
    device: str
    device_name: str
    scheduled: str
    started: str | None
    finished: str | None
    exit_code: int | None
    state: str
    error: str | None
    services: dict[str, int | None]
    received_at: str


class JobDevice(TypedDict):
    """One device of a job with its state and services."""

    device: str
    name: str
    state: str
    error: str | None
    eligible: bool
    assigned: bool
    version: str | None
    target_version: str | None
    running_version: str | None
    waiting: str | None
    services: dict[str, ServiceStatus]
    updated_at: str | None
    last_run: JobRun | None
    next_run: str | None


class BatchDevice(TypedDict):
    """A device in one batch of a staged rollout."""

    device: str
    name: str
    state: str
    version: str | None


class Batch(TypedDict):
    """One batch of a staged rollout."""

    index: int
    state: str
    devices: list[BatchDevice]


class Rollout(TypedDict):
    """A job's staged rollout: its settings and progress."""

    max_parallel: int
    canaries: int
    min_healthy_time: float
    failure_threshold: int | float
    auto_revert: bool
    healthy_deadline: float
    lock_timeout: float
    state: str
    from_version: str | None
    to_version: str | None
    kind: str
    changes: list[str]
    holding_previous_configuration: bool
    batch: int | None
    batch_count: int
    batches: list[Batch]
    failures: list[str]
    reason: str | None
    locks_overridden_at: str | None
    updated_at: str | None


class Schedule(TypedDict):
    """A job's ``schedule`` with the server's view of its next fire time (each"""

    cron: str
    timezone: str
    overlap: str
    next: str | None


class Job(TypedDict):
    """A job (deployment) with its device counts."""

    id: str
    name: str
    application: str
    application_id: str
    version: str
    project: str
    project_id: str
    state: str
    error: str | None
    targets: list[str] | None
    selector: str | None
    environment: dict[str, str]
    start: str | None
    end: str | None
    reservation: str | None
    created_at: str
    updated_at: str | None
    created_by: str
    services: list[str]
    counts: dict[str, int]
    device_counts: dict[str, int]
    devices: list[JobDevice]
    devices_next: str | None
    rollout: Rollout | None
    schedule: Schedule | None
