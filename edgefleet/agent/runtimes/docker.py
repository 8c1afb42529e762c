"""The ``docker`` runtime: the Docker Engine API through the agent's own client
(:mod:`edgefleet.agent.engine`).

Works unchanged against Docker, Podman's compatible socket and balenaEngine.
The client is blocking, so every call runs in a worker thread; its errors are
translated here, once, into :class:`RuntimeFailure` with a sentence a person
can act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from edgefleet.agent import workload_files
from edgefleet.agent.engine import APIError, EngineClient, EngineError, ImageNotFound, NotFound
from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.execs import DockerExec, ExecRequest
from edgefleet.agent.runtimes import docker_config, docker_logs
from edgefleet.agent.runtimes.workload import (
    LABEL_DEVICE,
    LABEL_INPUTS,
    LABEL_JOB,
    LABEL_MANAGED,
    LogLine,
    Workload,
    WorkloadSpec,
    WorkloadState,
)
from edgefleet.spec.images import registry_of, split_reference
from edgefleet.spec.policy import DevicePolicy

log = logging.getLogger(__name__)
T = TypeVar("T")
_STATES: dict[str, WorkloadState] = {
    "created": "created",
    "configured": "created",
    "running": "running",
    "restarting": "restarting",
    "paused": "paused",
    "exited": "exited",
    "stopped": "exited",
    "dead": "dead",
    "removing": "dead",
}


def _pull_errors(progress: Any) -> str | None:
    """The registry's answer when a pull failed: engines report it inside the
    progress stream of a 200 response, not as an HTTP error."""
    for item in progress:
        if isinstance(item, dict) and (item.get("error") or item.get("errorDetail")):
            detail = item.get("errorDetail") or {}
            return str(item.get("error") or detail.get("message") or item)
    return None


class DockerRuntime:
    name = "docker"

    def __init__(self, base_url: str, policy: DevicePolicy) -> None:
        """``policy``: what the device's owner allows; checked again before every
        create (:func:`~edgefleet.agent.runtimes.docker_config.create_body`)."""
        self.base_url = base_url
        self._client: EngineClient | None = None
        self.policy = policy
        self.device_id = ""
        self._podman: bool | None = None
        # Awaited after a job network is created or removed, before any container
        # joins it: the isolation firewall (agent/isolation.py) follows at once.
        self.network_hooks: list[Callable[[], Awaitable[None]]] = []

    @property
    def client(self) -> EngineClient:
        """Made on first use; it holds no connection between calls. An address it
        cannot use (``ssh://``) is said as a RuntimeFailure."""
        if self._client is None:
            try:
                self._client = EngineClient(self.base_url, timeout=120)
            except EngineError as exc:
                raise RuntimeFailure(f"the container engine: {exc}") from exc
        return self._client

    def engine_api(self) -> EngineClient:
        """The engine's client (:class:`~.capabilities.HasEngine`)."""
        return self.client

    async def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except NotFound:
            raise
        except APIError as exc:
            explanation = exc.explanation or str(exc)
            raise RuntimeFailure(f"{what}: the engine said: {explanation}") from exc
        except (EngineError, OSError) as exc:  # EngineUnreachable says where it looked
            raise RuntimeFailure(f"{what}: cannot reach the container engine ({exc})") from exc

    # -- Runtime --------------------------------------------------------------------------

    async def ping(self) -> bool:
        try:
            return await asyncio.to_thread(self.client.ping)
        except (EngineError, OSError, RuntimeFailure) as exc:
            log.debug("the engine at %s does not answer: %s", self.base_url, exc)
            return False

    async def workloads(self, job_id: str | None = None) -> list[Workload]:
        filters = [f"{LABEL_MANAGED}=true"]
        if self.device_id:
            filters.append(f"{LABEL_DEVICE}={self.device_id}")
        if job_id is not None:
            filters.append(f"{LABEL_JOB}={job_id}")
        containers = self.client.containers
        summaries = await self._call(
            "listing containers", containers.list, all=True, filters={"label": filters}
        )
        workloads = []
        for summary in summaries:
            try:
                info = await self._call("inspecting a container", containers.inspect, summary["Id"])
            except NotFound:
                continue
            workloads.append(self._workload(info))
        return workloads

    def _workload(self, info: dict[str, Any]) -> Workload:
        labels = info["Config"].get("Labels") or {}
        state = info.get("State") or {}
        status = _STATES.get(str(state.get("Status", "")).lower(), "exited")
        if state.get("Restarting"):
            status = "restarting"
        networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
        addresses = [n["IPAddress"] for n in networks.values() if n.get("IPAddress")]
        exit_code = state.get("ExitCode")
        return Workload(
            id=info["Id"],
            name=info.get("Name", "").lstrip("/"),
            job_id=labels.get(LABEL_JOB, ""),
            service=labels.get("io.edgefleet.service", ""),
            revision=labels.get("io.edgefleet.revision", ""),
            version=labels.get("io.edgefleet.version", ""),
            state=status,
            exit_code=exit_code if status not in ("running", "created") else None,
            restarts=int(info.get("RestartCount") or 0),
            image=info["Config"].get("Image"),
            started_at=docker_logs.parse_time(state.get("StartedAt")),
            finished_at=docker_logs.parse_time(state.get("FinishedAt")),
            addresses=addresses,
            error=state.get("Error") or None,
            inputs=labels.get(LABEL_INPUTS, ""),
        )

    async def prepare(self, spec: WorkloadSpec, auth: dict[str, dict[str, str]]) -> None:
        image = spec.service.image
        if not image:
            raise RuntimeFailure(f"service {spec.service_name}: no image")
        images = self.client.images
        present = True
        try:
            await asyncio.to_thread(images.inspect, image)
        except ImageNotFound:
            present = False
        except (EngineError, OSError) as exc:
            raise RuntimeFailure(f"checking image {image}: {exc}") from exc
        policy = spec.service.pull_policy
        if policy == "never":
            if not present:
                raise RuntimeFailure(
                    f"image {image} is not on this device and pull_policy is 'never'"
                )
            return
        if present and policy != "always":
            return
        registry = registry_of(image)
        credentials = auth.get(registry)
        repository, tag = split_reference(image)
        try:
            answer = await asyncio.to_thread(
                lambda: _pull_errors(
                    images.pull(repository, tag, auth=credentials, platform=spec.service.platform)
                )
            )
        except (EngineError, OSError) as exc:
            answer = getattr(exc, "explanation", None) or str(exc)
        if answer is None:
            return
        if present:
            log.warning("pulling %s failed, using the copy on this device: %s", image, answer)
            return
        hint = ""
        if "unauthorized" in answer.lower() or "denied" in answer.lower():
            hint = (
                f" (the credentials for {registry} were refused)"
                if credentials
                else f" (no credentials for {registry}: add them with `edgefleet registries add`)"
            )
        raise RuntimeFailure(f"cannot pull image {image} from {registry}: {answer}{hint}")

    async def build(
        self, spec: WorkloadSpec, context: Path, progress: Callable[[str], None]
    ) -> None:
        """Build ``spec.service.build`` here, tagged ``spec.service.image`` (agent/builds.py)."""
        assert spec.service.build is not None and spec.service.image
        from edgefleet.agent.runtimes.docker_build import build_image

        images, loop = self.client.images, asyncio.get_running_loop()

        def step(line: str) -> None:  # from the build's thread to the event loop
            loop.call_soon_threadsafe(progress, f"building: {line}"[:300])

        await asyncio.to_thread(
            build_image, images, context, spec.service.image, spec.service.build, step
        )

    async def is_podman(self) -> bool:
        """Podman's compatible API needs a few things said differently."""
        if self._podman is None:
            try:
                version = await asyncio.to_thread(self.client.version)
            except (EngineError, OSError, RuntimeFailure):
                return False
            names = [str(c.get("Name", "")) for c in version.get("Components") or []]
            self._podman = any("podman" in n.lower() for n in names)
        return self._podman

    async def ensure_network(self, name: str, job_id: str, internal: bool = False) -> None:
        networks = self.client.networks
        existing = await self._call("listing networks", networks.list, names=[name])
        if any(n.get("Name") == name for n in existing):
            return
        # Jobs never reach each other: Docker isolates bridge networks by itself,
        # Podman's netavark only when asked to.
        options = {"isolate": "true"} if await self.is_podman() else None
        await self._call(
            f"creating network {name}",
            networks.create,
            name,
            driver="bridge",
            internal=internal,
            options=options,
            labels=self._labels(job_id),
        )
        for hook in self.network_hooks:
            await hook()

    def _labels(self, job_id: str) -> dict[str, str]:
        labels = {LABEL_MANAGED: "true", LABEL_JOB: job_id}
        if self.device_id:
            labels[LABEL_DEVICE] = self.device_id
        return labels

    def _job_filter(self, job_id: str) -> list[str]:
        found = [f"{LABEL_JOB}={job_id}"]
        if self.device_id:
            found.append(f"{LABEL_DEVICE}={self.device_id}")
        return found

    async def remove_network(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            await self._call(f"removing network {name}", self.client.networks.remove, name)
        for hook in self.network_hooks:
            await hook()

    async def list_networks(self, job_id: str) -> list[str]:
        networks = await self._call(
            "listing networks",
            self.client.networks.list,
            filters={"label": self._job_filter(job_id)},
        )
        return sorted(n["Name"] for n in networks)

    async def ensure_volume(self, name: str, job_id: str) -> None:
        volumes = self.client.volumes
        try:
            await asyncio.to_thread(volumes.inspect, name)
            return
        except (EngineError, OSError):  # absent, or the create below says why
            pass
        await self._call(
            f"creating volume {name}",
            volumes.create,
            name,
            labels=self._labels(job_id),
        )

    async def remove_volumes(self, job_id: str) -> None:
        volumes = self.client.volumes
        found = await self._call(
            "listing volumes", volumes.list, filters={"label": self._job_filter(job_id)}
        )
        for volume in (found or {}).get("Volumes") or []:
            with contextlib.suppress(NotFound, RuntimeFailure):
                await self._call(
                    f"removing volume {volume['Name']}",
                    volumes.remove,
                    volume["Name"],
                    force=True,
                )

    async def create(self, spec: WorkloadSpec) -> str:
        client = self.client
        try:
            existing = await asyncio.to_thread(client.containers.inspect, spec.name)
            return str(existing["Id"])
        except NotFound:
            pass
        except (EngineError, OSError) as exc:
            raise RuntimeFailure(f"inspecting {spec.name}: {exc}") from exc
        settings = docker_config.CreateSettings(
            policy=self.policy, host_gateway=await self._host_gateway(spec)
        )
        body = docker_config.create_body(settings, spec)
        created = await self._call(
            f"creating service {spec.service_name}", client.containers.create, body, spec.name
        )
        container_id = str(created["Id"])
        for net, aliases in list(spec.networks.items())[1:]:
            await self._call(
                f"connecting {spec.service_name} to {net}",
                client.networks.connect,
                net,
                container_id,
                aliases,
            )
        return container_id

    async def _host_gateway(self, spec: WorkloadSpec) -> str | None:
        """``extra_hosts: [name:host-gateway]`` on Podman before 4.7, which does not know
        it: the gateway of the service's first network is the device, seen from there."""
        if not any(h.endswith(":host-gateway") for h in spec.service.extra_hosts):
            return None
        if not await self.is_podman():
            return None
        mode = docker_config.network_mode(spec)
        if mode in (None, "host", "none", "bridge"):
            return "127.0.0.1" if mode == "host" else None
        info = await self._call(f"inspecting network {mode}", self.client.networks.inspect, mode)
        for config in (info.get("IPAM") or {}).get("Config") or []:
            if config.get("Gateway"):
                return str(config["Gateway"])
        return None

    async def start(self, workload_id: str) -> None:
        await self._call("starting a container", self.client.containers.start, workload_id)

    async def stop(self, workload_id: str, timeout: float) -> None:
        with contextlib.suppress(NotFound):
            await self._call(
                "stopping a container", self.client.containers.stop, workload_id, int(timeout)
            )

    async def remove(self, workload_id: str) -> None:
        containers = self.client.containers
        try:
            info = await asyncio.to_thread(containers.inspect, workload_id)
        except NotFound:
            return
        except (EngineError, OSError) as exc:
            raise RuntimeFailure(f"inspecting a container: {exc}") from exc
        grace = int(float((info["Config"].get("Labels") or {}).get("io.edgefleet.grace", "10")))
        if (info.get("State") or {}).get("Running"):
            with contextlib.suppress(NotFound):
                await self._call("stopping a container", containers.stop, workload_id, grace)
        with contextlib.suppress(NotFound):
            await self._call(
                "removing a container", containers.remove, workload_id, volumes=True, force=True
            )
        workload_files.forget(workload_files.mount_sources(info))  # its secrets and configs

    def logs(
        self, workload_id: str, *, tail: int | None, since: datetime | None, follow: bool
    ) -> AsyncIterator[LogLine]:
        return docker_logs.stream(self.client, workload_id, tail, since, follow)

    # -- CanExec, CanExecInteractive ------------------------------------------------------

    async def exec(
        self, workload_id: str, argv: list[str], env: dict[str, str], timeout: float
    ) -> tuple[int, bytes, bytes]:
        execs = self.client.execs

        def run() -> tuple[int, bytes, bytes]:
            exec_id = execs.create(workload_id, argv, env=env or None)
            out, err = execs.run(exec_id)
            code = execs.inspect(exec_id).get("ExitCode")
            return int(code if code is not None else -1), out, err

        try:
            return await asyncio.wait_for(asyncio.to_thread(run), timeout)
        except TimeoutError:  # the caller's deadline: health checks and commands say so
            raise
        except (EngineError, OSError) as exc:
            raise RuntimeFailure(
                f"exec failed: {getattr(exc, 'explanation', None) or exc}"
            ) from exc

    async def exec_session(self, workload_id: str, request: ExecRequest) -> DockerExec:
        try:
            return await DockerExec.start(self.client.execs, workload_id, request)
        except (EngineError, OSError) as exc:
            raise RuntimeFailure(
                f"exec failed: {getattr(exc, 'explanation', None) or exc}"
            ) from exc
