"""Settings of one ``edgefleet agent`` process; CLI flags are derived from these fields.

Every field is also read from ``EDGEFLEET_<NAME>``, like the server's settings.
Unlike the server, the agent does this with a few lines of its own instead of
pydantic-settings: that package costs the agent 4-5 MB of memory, and an
idle agent must stay under 40 MB on small devices.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgefleet.labels import LabelError, parse_assignments
from edgefleet.spec.units import parse_size


def _split(value: Any) -> Any:
    """Lists from the environment: ``EDGEFLEET_SERVER=http://a,http://b``."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


StrList = list[str]
ENV_PREFIX = "EDGEFLEET_"


def _count(value: object) -> int:
    count = int(str(value))
    if count <= 0:
        raise ValueError("must be a positive number")
    return count


def _limit(value: str, parse: Callable[[str], int]) -> int | None:
    """A limit flag: a value, or ``none``/``unlimited`` for no limit."""
    if value.strip().lower() in ("none", "unlimited", "-1", "0"):
        return None
    try:
        return parse(value)
    except ValueError as exc:
        raise ValueError(f"{value!r}: {exc}; or none for no limit") from exc


def default_state_dir() -> Path:
    import os

    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "edgefleet" / "agent"


class AgentSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _environment(cls, values: Any) -> Any:
        """Fields not given explicitly come from ``EDGEFLEET_<NAME>`` when set."""
        if not isinstance(values, dict):
            return values
        merged = dict(values)
        for name in cls.model_fields:
            if name in merged:
                continue
            raw = os.environ.get(ENV_PREFIX + name.upper())
            if raw is not None:
                merged[name] = raw
        return merged

    server: StrList = Field(
        default_factory=list,
        description="server URL (repeat for several replicas, or give one load balancer)",
    )
    provisioning_key: str | None = Field(None, description="enrolls the device on first start")
    state_dir: Path = Field(
        default_factory=default_state_dir, description="credentials, desired state, buffered data"
    )
    name: str | None = Field(None, description="device name at enrollment (default: hostname)")
    files_dir: Path | None = Field(
        None,
        description="tmpfs directory for workloads' secrets and configs (default: "
        "$XDG_RUNTIME_DIR/edgefleet-files, else /dev/shm); never on disk",
    )
    label: StrList = Field(default_factory=list, description="k=v label at enrollment (repeat)")
    # No "sim": the simulator's runtime is built by the simulator itself, never chosen here.
    runtime: Literal["auto", "docker", "process"] = Field(
        "auto", description="docker (containers and processes), process, or auto"
    )
    docker_host: str | None = Field(
        None, description="Docker Engine API socket (default: DOCKER_HOST, then the usual sockets)"
    )
    peripheral: StrList = Field(
        default_factory=list, description="declare a peripheral: KIND or KIND=/dev/PATH (repeat)"
    )
    heartbeat_interval: float | None = Field(
        None, gt=0, description="seconds between heartbeats (default: what the server says, 10)"
    )
    reconnect_max_delay: float = Field(
        20.0,
        gt=0,
        description="cap of the reconnect backoff, seconds (after a server restart, the "
        "longest an agent waits once it is up)",
    )
    update_lock_timeout: float = Field(
        600.0,
        ge=0,
        le=7 * 86400,
        description="seconds an upgrade waits for a held update lock when the job sets none",
    )
    build_context_max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024,
        description="largest build context (Compose build:) this device fetches from the server",
    )
    upgrade_max_bytes: int = Field(
        100 * 1024 * 1024,
        ge=1024,
        description="largest agent release (wheel) this device downloads over the air",
    )
    allow_host_path: StrList = Field(
        default_factory=list, description="host path prefix workloads may bind-mount (repeat)"
    )
    allow_published_ports: bool = Field(
        False, description="let workloads publish ports on the device"
    )
    allow_privileged: bool = Field(
        False,
        description="let workloads run privileged / host or bridge network / host pid / any capability or security_opt",
    )
    allow_process: bool = Field(
        False, description="let jobs run process services (on with --runtime process too)"
    )
    process_user: str | None = Field(
        None,
        description="user process services run as (default: nobody when the agent runs as root, else the agent's own user)",
    )
    process_dir: Path | None = Field(
        None,
        description="where process services get their working directories (default: <state-dir>-work; never inside the state dir)",
    )
    allow_cap: StrList = Field(
        default_factory=list,
        description="capability workloads may add beyond the engine's default set (repeat)",
    )
    allow_security_profile: StrList = Field(
        default_factory=list,
        description="seccomp profile path prefix or AppArmor profile name workloads may use (repeat)",
    )
    allow_external_volume: StrList = Field(
        default_factory=list,
        description="engine volume name or glob workloads may mount as external (repeat; never ef-*)",
    )
    allow_peripheral: StrList = Field(
        default_factory=list,
        description="peripheral kind (camera, serial, gpu...) jobs may use (repeat); --peripheral KIND=/dev/PATH also allows that one",
    )
    default_memory: str = Field(
        "512M", description="memory limit of a workload that sets none (a size, or none)"
    )
    max_memory: str = Field(
        "2G", description="most memory a workload may ask for (a size, or none: no maximum)"
    )
    default_pids: str = Field(
        "512", description="process limit of a workload that sets none (a number, or none)"
    )
    max_pids: str = Field(
        "4096", description="most processes a workload may ask for (a number, or none: no maximum)"
    )
    isolation_firewall: bool = Field(
        True,
        description="keep jobs' networks apart with the agent's own nftables table (root only; turn off where the operator manages the firewall)",
    )
    data_quota_mb: int = Field(512, gt=0, description="disk budget for buffered records, MiB")
    data_evict_oldest: bool = Field(
        False,
        description="when the data buffer is full, drop the oldest records (counted) instead of refusing new ones",
    )
    data_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="port of the local data endpoint for workloads (0: pick a free one on first start and keep it)",
    )
    schedule_run_timeout: float = Field(
        3600.0,
        gt=0,
        description="seconds a periodic job's run may take before its containers are stopped (failed)",
    )
    schedule_log_max: int = Field(
        1000,
        gt=0,
        description="runs of periodic jobs kept on the device until the server acknowledges them (oldest dropped past it, counted)",
    )
    fed_repin: StrList = Field(
        default_factory=list,
        description="forget the pinned federated key of this peer device id at start "
        "(repeat; 'all': every pin), after the peer was re-enrolled",
    )
    local_api: bool = Field(
        True, description="serve the owner's local API on a Unix socket (agent status, jobs, apps)"
    )
    local_api_socket: Path | None = Field(
        None, description="the local API's socket (default: <state-dir>/agent.sock)"
    )
    local_api_group: str | None = Field(
        None,
        description="group (name or id) whose members may use the local API (socket mode 0660; default: the agent's own group)",
    )
    local_api_max_body: int = Field(
        1024 * 1024, gt=0, le=64 * 1024 * 1024, description="largest local API request body, bytes"
    )
    local_actions_max: int = Field(
        1000,
        gt=0,
        description="local actions kept until the server acknowledges them (oldest dropped)",
    )
    local_apps_max: int = Field(20, gt=0, description="most owner's local apps on the device")
    # device telemetry and logs that outlive the connection (issue 18)
    telemetry_interval: float = Field(
        60.0, gt=0, description="seconds between two samples of CPU, memory, disk, temperature..."
    )
    telemetry_buffer_max: int = Field(
        10080,
        gt=0,
        description="samples kept on disk while the server is unreachable (oldest dropped)",
    )
    logs_ship_interval: float = Field(
        15.0,
        ge=0,
        description="seconds between shipping workloads' recent logs to the server (0: never)",
    )
    logs_ship_lines: int = Field(
        200,
        gt=0,
        le=2000,
        description="last lines per service kept on the server for offline viewing",
    )
    logs_ship_bytes: int = Field(
        64 * 1024, gt=0, description="bytes of recent log lines per service shipped to the server"
    )
    ca_file: Path | None = Field(None, description="CA bundle to trust for https/wss servers")
    log_level: str = Field("info", description="debug, info, warning, error")

    @field_validator(
        "server",
        "label",
        "peripheral",
        "allow_host_path",
        "allow_cap",
        "allow_security_profile",
        "allow_external_volume",
        "allow_peripheral",
        mode="before",
    )
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("runtime", mode="before")
    @classmethod
    def _not_sim(cls, value: Any) -> Any:
        """``sim`` was offered once; say where it went rather than just "not a choice"."""
        if value == "sim":
            raise ValueError(
                "--runtime sim: 'sim' is the fleet simulator's runtime (`edgefleet sim`), "
                "a real agent runs auto, docker or process"
            )
        return value

    @field_validator("default_memory", "max_memory")
    @classmethod
    def _sizes(cls, value: str) -> str:
        _limit(value, parse_size)
        return value

    @field_validator("default_pids", "max_pids")
    @classmethod
    def _counts(cls, value: str) -> str:
        _limit(value, _count)
        return value

    @field_validator("allow_cap")
    @classmethod
    def _caps(cls, value: list[str]) -> list[str]:
        caps = [cap.upper().removeprefix("CAP_") for cap in value]
        for cap in caps:
            if not cap.replace("_", "").isalnum() or cap == "ALL":
                raise ValueError(f"{cap!r} is not a capability name (ALL needs --allow-privileged)")
        return caps

    @property
    def memory_limits(self) -> tuple[int | None, int | None]:
        """(default, maximum) memory in bytes; ``None`` is no limit."""
        return _limit(self.default_memory, parse_size), _limit(self.max_memory, parse_size)

    @property
    def pids_limits(self) -> tuple[int | None, int | None]:
        """(default, maximum) processes; ``None`` is no limit."""
        return _limit(self.default_pids, _count), _limit(self.max_pids, _count)

    @field_validator("label")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        try:
            parse_assignments(value)
        except LabelError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @field_validator("server")
    @classmethod
    def _servers(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://", "ws://", "wss://")):
                raise ValueError(f"server URL {url!r} must start with http:// or https://")
        return [u.rstrip("/") for u in value]

    @property
    def labels(self) -> dict[str, str]:
        return parse_assignments(self.label)


def load(**overrides: object) -> AgentSettings:
    return AgentSettings(**{k: v for k, v in overrides.items() if v not in (None, [], ())})
