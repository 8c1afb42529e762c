"""The normalized application spec: what a Compose file means, in one shape.

A Compose file allows many spellings of one thing (``command`` as a string or
a list, ``environment`` as a map or a list, ports in short or long syntax,
durations as ``1m30s``). :mod:`edgefleet.spec.compose` reads every spelling and
produces these models; everything after upload (the scheduler, the wire, the
agent's runtimes) sees only this shape, so no runtime re-parses Compose.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RestartPolicy = Literal["no", "always", "on-failure", "unless-stopped"]
DependsCondition = Literal["service_started", "service_healthy", "service_completed_successfully"]


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class HealthCheck(SpecModel):
    """``test`` is always the exec form: ``["CMD", ...]`` or ``["CMD-SHELL", "..."]``."""

    test: list[str]
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0
    start_interval: float = 5.0


class Port(SpecModel):
    target: int
    protocol: Literal["tcp", "udp"] = "tcp"
    published: int | None = None
    host_ip: str | None = None
    name: str | None = None


class Mount(SpecModel):
    type: Literal["volume", "bind", "tmpfs"]
    target: str
    source: str | None = Field(None, description="volume name, or host path for bind")
    read_only: bool = False
    tmpfs_size: int | None = None
    tmpfs_mode: int | None = None


class Dependency(SpecModel):
    condition: DependsCondition = "service_started"
    required: bool = True
    restart: bool = False


class Ulimit(SpecModel):
    soft: int
    hard: int


class FileRef(SpecModel):
    """A service's use of a secret or config: the file ``target`` (absolute, in
    the container) holds the object ``source`` declared at the top level.

    ``version`` (secrets) and ``content`` (configs) are filled in by the server
    for each device when it renders desired state, so a rotated secret or a
    changed config changes the revision of the jobs that use it."""

    source: str
    target: str
    mode: int | None = None
    version: int | None = None
    content: str | None = None


class Build(SpecModel):
    """Compose ``build:``, accepted when the version carries a build context;
    ``digest`` names that context (``sha256:…``), set by the server at deploy."""

    context: str = "."
    dockerfile: str | None = None
    args: dict[str, str] = Field(default_factory=dict)
    target: str | None = None
    digest: str | None = None


class Service(SpecModel):
    """One service of an application, normalized."""

    runtime: Literal["container", "process"] = "container"
    image: str | None = None
    build: Build | None = None
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    ports: list[Port] = Field(default_factory=list)
    expose: list[int] = Field(default_factory=list)
    volumes: list[Mount] = Field(default_factory=list)
    restart: RestartPolicy = "no"
    restart_max_attempts: int | None = None
    healthcheck: HealthCheck | None = None
    depends_on: dict[str, Dependency] = Field(default_factory=dict)
    devices: list[str] = Field(default_factory=list, description="host:container[:perms]")
    cap_add: list[str] = Field(default_factory=list)
    cap_drop: list[str] = Field(default_factory=list)
    working_dir: str | None = None
    user: str | None = None
    hostname: str | None = None
    aliases: list[str] = Field(default_factory=list, description="extra DNS names")
    networks: dict[str, list[str]] = Field(
        default_factory=dict, description="network name -> aliases on it"
    )
    labels: dict[str, str] = Field(default_factory=dict)
    stop_signal: str | None = None
    stop_grace_period: float = 10.0
    init: bool = False
    read_only: bool = False
    shm_size: int | None = None
    ulimits: dict[str, Ulimit] = Field(default_factory=dict)
    sysctls: dict[str, str] = Field(default_factory=dict)
    mem_limit: int | None = None
    cpus: float | None = None
    pids_limit: int | None = Field(None, description="most processes at once; 0: unlimited")
    pull_policy: Literal["always", "missing", "never", "if_not_present"] = "missing"
    platform: str | None = None
    privileged: bool = False
    network_mode: str | None = None
    pid: str | None = None
    extra_hosts: list[str] = Field(default_factory=list, description="host:ip")
    dns: list[str] = Field(default_factory=list, description="DNS server addresses")
    security_opt: list[str] = Field(default_factory=list)
    group_add: list[str] = Field(default_factory=list, description="extra groups, names or ids")
    secrets: list[FileRef] = Field(default_factory=list, description="under /run/secrets/")
    configs: list[FileRef] = Field(default_factory=list, description="read-only files")


class Requirements(SpecModel):
    """``x-edgefleet.requires``: what a device must have to run the application."""

    peripherals: list[str] = Field(default_factory=list)
    arch: list[str] = Field(default_factory=list)
    memory: int | None = Field(None, description="bytes")
    runtime: list[str] = Field(default_factory=list)


class Volume(SpecModel):
    external: bool = False
    name: str | None = Field(None, description="the device's volume, for an external volume")
    project: bool = Field(
        False,
        description="a project volume (x-edgefleet-project-volume): kept on the device across "
        "jobs; the server names it ef-proj-<project>-<key>",
    )
    labels: dict[str, str] = Field(default_factory=dict)


class Network(SpecModel):
    internal: bool = False
    labels: dict[str, str] = Field(default_factory=dict)


class FileSource(SpecModel):
    """A top-level ``secrets:`` or ``configs:`` entry. A secret is always
    ``external``: the project secret ``name``. A config is the project
    variable ``name`` when external, else its inline ``content``."""

    external: bool = False
    name: str | None = None
    content: str | None = None


class AppSpec(SpecModel):
    """A whole application version, normalized."""

    services: dict[str, Service]
    volumes: dict[str, Volume] = Field(default_factory=dict)
    networks: dict[str, Network] = Field(default_factory=dict)
    secrets: dict[str, FileSource] = Field(default_factory=dict)
    configs: dict[str, FileSource] = Field(default_factory=dict)
    requires: Requirements = Field(default_factory=Requirements)

    def start_order(self) -> list[str]:
        """Services in an order where every dependency comes first (stable by name)."""
        done: list[str] = []
        seen: set[str] = set()

        def visit(name: str, stack: tuple[str, ...]) -> None:
            if name in seen:
                return
            for dep in sorted(self.services[name].depends_on):
                if dep in self.services and dep not in stack:
                    visit(dep, (*stack, name))
            seen.add(name)
            done.append(name)

        for name in sorted(self.services):
            visit(name, ())
        return done

    def runtimes_needed(self) -> set[str]:
        return {
            "process" if service.runtime == "process" else "container"
            for service in self.services.values()
        }
