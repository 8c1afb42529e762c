"""What the server answers about devices, their events, exec, metrics, loans, reservations and declared peripherals.

Typed views of the JSON bodies (generated once from the server's OpenAPI
schemas): plain dicts at run time, so ``result["id"]`` keeps working, and
mypy checks every key a caller reads.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Peripheral(TypedDict):
    """A peripheral a device reported (camera, serial port, …)."""

    kind: str
    name: str
    path: str | None
    details: dict[str, str]


class Resources(TypedDict):
    """A device's hardware and operating system, as its agent reports them."""

    cpus: int
    memory: int
    disk: int
    disk_free: int
    arch: str
    os: str
    kernel: str
    hostname: str


class DevicePolicy(TypedDict):
    """The owner's permissions, as the agent reports them in ``facts.policy``."""

    process: bool
    process_user: str | None
    host_paths: list[str]
    published_ports: bool
    privileged: bool
    capabilities: list[str]
    security_profiles: list[str]
    external_volumes: list[str]
    peripherals: list[str]
    peripheral_kinds: list[str]
    default_memory: int | None
    max_memory: int | None
    default_pids: int | None
    max_pids: int | None


class UpgradeReport(TypedDict):
    """The last upgrade this device tried, reported in its facts."""

    version: str
    state: str
    from_version: str
    reason: str
    at: str | None
    attempt: str


class LocalAppFact(TypedDict):
    """An owner's local app, as the server sees it (read-only)."""

    name: str
    job_id: str
    services: dict[str, str]


class Device(TypedDict):
    """A device as the API shows it (a guest sees a reduced view)."""

    id: str
    name: str
    project: str
    project_id: str
    labels: dict[str, str]
    metadata: dict[str, Any]
    peripherals: list[Peripheral]
    resources: Resources
    runtimes: list[str]
    policy: DevicePolicy | None
    agent_version: str
    agent_upgrade: UpgradeReport | None
    is_online: bool
    is_ready: bool
    not_ready_reason: str | None
    lent: bool
    loan: str | None
    last_seen: str | None
    created_at: str
    desired_generation: int
    applied_generation: int
    replica: str | None
    local_apps: list[LocalAppFact]


class Event(TypedDict):
    """One event of the fleet's log."""

    id: int
    time: str
    kind: str
    project: str | None
    device: str | None
    job: str | None
    actor: str | None
    message: str
    data: dict[str, Any]


class ExecResult(TypedDict):
    """What a command run on a device answered."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool


class MetricPoint(TypedDict):
    """A device's health at one time (or averaged over a step)."""

    time: str
    cpu: float
    memory: float
    disk: float
    temperature: float | None
    net_rx: int
    net_tx: int
    uptime: float
    memory_used: int
    memory_total: int
    disk_used: int
    disk_total: int
    samples: int
    cpu_max: float
    memory_max: float
    disk_max: float


class LoanRights(TypedDict):
    """The part of the device's policy guest jobs get: each field can only"""

    process: bool
    published_ports: bool
    privileged: bool
    capabilities: list[str]
    host_paths: list[str]
    external_volumes: list[str]
    peripherals: list[str]
    peripheral_kinds: list[str]
    max_memory: int | None
    max_pids: int | None


class Loan(TypedDict):
    """A device lent to a project (or ``*``)."""

    id: str
    device: str
    device_name: str
    project: str
    project_id: str | None
    rights: LoanRights
    expose_labels: list[str]
    time_share: float
    share_window_hours: int
    created_at: str
    created_by: str


class Reservation(TypedDict):
    """A booking of devices for a time window."""

    id: str
    project: str
    project_id: str
    devices: list[str]
    device_names: list[str]
    selector: str | None
    count: int | None
    spread: str | None
    start: str
    end: str
    exclusive: bool
    state: str
    created_by: str
    created_at: str


class ReservationConflict(TypedDict):
    """A device a booking could not take, and why."""

    device: str
    reason: str


class ReservationDryRun(TypedDict):
    """What a booking would take: devices, conflicts, skipped."""

    devices: list[str]
    conflicts: list[ReservationConflict]
    skipped: list[ReservationConflict]


class Requirement(TypedDict):
    """Peripherals a project declares its devices (by selector) must have."""

    selector: str
    peripherals: list[str]
