"""The contract every runtime keeps, checked against each one: ``docker`` (on the
real Podman engine of the test session), ``process`` (real child processes) and
``sim`` (the simulator's).

One small workload per runtime goes through the life the agent gives it
(prepare, create, start, logs, exec, stop, start again, remove); then each
optional ability the runtime claims (:mod:`edgefleet.agent.runtimes.capabilities`)
is exercised, and a caller refuses a runtime that lacks one in words that name
it. ``sim`` runs nothing, so only real runtimes are held to their output.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from edgefleet.agent.builds import Builds
from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.execs import ExecRequest
from edgefleet.agent.runtimes import capabilities as cap
from edgefleet.agent.runtimes.base import Runtime, RuntimeSet, Workload, WorkloadSpec
from edgefleet.agent.runtimes.process_user import own_name
from edgefleet.agent.runtimes.sim import SimRuntime
from edgefleet.spec.model import Build, Service
from edgefleet.spec.policy import DevicePolicy

# Which runtime has which ability: the table in capabilities.py's docstring.
ABILITIES: dict[str, set[type]] = {
    "docker": {
        cap.HasNetworks,
        cap.HasVolumes,
        cap.HasNetworkHooks,
        cap.CanExec,
        cap.CanExecInteractive,
        cap.CanBuild,
        cap.HasEngine,
    },
    "process": {cap.CanExec, cap.CanExecInteractive},
    "sim": {cap.HasNetworks, cap.HasVolumes, cap.CanExec},
}
ALL_ABILITIES = set().union(*ABILITIES.values())
SCRIPT = "echo hello from $GREETING; exec sleep 300"


@pytest.fixture(
    params=["sim", "process", pytest.param("docker", marks=pytest.mark.podman)],
)
async def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A fresh runtime scoped to a device id of its own; whatever the test left
    in it (workloads, networks, volumes) is removed afterwards."""
    name: str = request.param
    made: Runtime
    if name == "sim":
        made = SimRuntime()
    elif name == "process":
        from edgefleet.agent.runtimes.process import ProcessRuntime

        policy = DevicePolicy(process=True, process_user=own_name())
        made = ProcessRuntime(tmp_path / "processes", policy, tmp_path / "work", monitor_every=0.1)
    else:
        from edgefleet.agent.runtimes.docker import DockerRuntime

        engine = request.getfixturevalue("podman_engine")
        made = DockerRuntime(engine.url, DevicePolicy())
    made.device_id = f"conf{uuid.uuid4().hex[:8]}"
    yield made
    for workload in await made.workloads():
        await made.remove(workload.id)
    if isinstance(made, cap.HasNetworks):
        for network in await made.list_networks("conf"):
            await made.remove_network(network)
    if isinstance(made, cap.HasVolumes):
        await made.remove_volumes("conf")
    if isinstance(made, cap.HasEngine):
        made.engine_api().close()


def spec_for(runtime: Runtime, service: Service | None = None) -> WorkloadSpec:
    from tests.support.podman import IMAGE

    return WorkloadSpec(
        job_id="conf",
        device_id=runtime.device_id,
        revision="r1",
        version="1",
        service_name="web",
        service=service
        or Service(
            runtime="process" if runtime.name == "process" else "container",
            image=None if runtime.name == "process" else IMAGE,
            command=["sh", "-c", SCRIPT],
            stop_grace_period=2,
            environment={"GREETING": "conformance"},
        ),
        environment={"GREETING": "conformance"},
    )


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not within {within:g} s: {what}")
        await asyncio.sleep(0.1)


async def state_of(runtime: Runtime, workload_id: str) -> Workload | None:
    return next((w for w in await runtime.workloads("conf") if w.id == workload_id), None)


async def log_text(runtime: Runtime, workload_id: str) -> str:
    lines = runtime.logs(workload_id, tail=None, since=None, follow=False)
    return "\n".join([line.text async for line in lines])


async def test_a_workload_lives_through_the_runtime_contract(runtime: Runtime) -> None:
    real = runtime.name != "sim"
    spec = spec_for(runtime)
    assert await runtime.ping()
    await runtime.prepare(spec, {})
    workload_id = await runtime.create(spec)
    assert await runtime.create(spec) == workload_id  # idempotent by name
    created = await state_of(runtime, workload_id)
    assert created is not None and created.state == "created"
    assert (created.job_id, created.service, created.revision, created.version) == (
        "conf",
        "web",
        "r1",
        "1",
    )
    assert created.inputs == spec.labels.get("io.edgefleet.inputs", "")
    assert [w.id for w in await runtime.workloads("another-job")] == []

    await runtime.start(workload_id)

    async def running() -> bool:
        found = await state_of(runtime, workload_id)
        return found is not None and found.state == "running"

    await eventually(running, "running after start")

    async def greeted() -> bool:
        text = await log_text(runtime, workload_id)
        return "hello from conformance" in text if real else bool(text)

    await eventually(greeted, "its output in logs")
    follow = runtime.logs(workload_id, tail=1, since=None, follow=True)
    assert isinstance(follow, AsyncGenerator)
    first = await asyncio.wait_for(anext(follow), 10)
    assert first.text
    await asyncio.wait_for(follow.aclose(), 10)  # a reader that stops ends the stream cleanly

    if isinstance(runtime, cap.CanExec):
        code, out, _err = await runtime.exec(
            workload_id, ["sh", "-c", "echo $WHO; exit 3"], {"WHO": "exec"}, 20
        )
        if real:
            assert (code, out) == (3, b"exec\n")
    if isinstance(runtime, cap.CanExecInteractive):
        session = await runtime.exec_session(
            workload_id, ExecRequest(["sh", "-c", "read x; echo got $x"], {}, tty=False)
        )
        await session.write(b"it\n")
        await session.close_stdin()
        output = b""
        while (chunk := await asyncio.wait_for(session.read(), 20)) is not None:
            output += chunk[1]
        assert b"got it" in output
        assert await asyncio.wait_for(session.wait(), 20) == 0

    await runtime.stop(workload_id, 5)
    stopped = await state_of(runtime, workload_id)
    assert stopped is not None and stopped.state == "exited"
    await runtime.start(workload_id)  # a stopped workload starts again
    await eventually(running, "running after a restart")

    await runtime.remove(workload_id)
    assert await state_of(runtime, workload_id) is None
    await runtime.remove(workload_id)  # absent is not an error


async def test_abilities_are_claimed_truthfully(runtime: Runtime, tmp_path: Path) -> None:
    claimed = {ability for ability in ALL_ABILITIES if isinstance(runtime, ability)}
    assert claimed == ABILITIES[runtime.name]

    if isinstance(runtime, cap.HasNetworkHooks):
        calls: list[str] = []

        async def hook() -> None:
            calls.append("hook")

        runtime.network_hooks.append(hook)
    if isinstance(runtime, cap.HasNetworks):
        name = f"ef-conf-{runtime.device_id}-r1"
        await runtime.ensure_network(name, "conf")
        await runtime.ensure_network(name, "conf")  # present already: nothing to do
        assert await runtime.list_networks("conf") == [name]
        assert await runtime.list_networks("another-job") == []
        await runtime.remove_network(name)
        assert await runtime.list_networks("conf") == []
    if isinstance(runtime, cap.HasNetworkHooks):
        assert calls == ["hook", "hook"]  # after the create and after the remove
    if isinstance(runtime, cap.HasVolumes):
        volume = f"ef-conf-{runtime.device_id}-data"
        await runtime.ensure_volume(volume, "conf")
        await runtime.ensure_volume(volume, "conf")
        await runtime.remove_volumes("conf")
    if isinstance(runtime, cap.HasEngine):
        assert await asyncio.to_thread(runtime.engine_api().ping)
        assert await runtime.is_podman()  # the session's engine is Podman
        if isinstance(runtime, cap.CanBuild):  # checked through the engine's own view
            await _build_checked(runtime, tmp_path)


async def _build_checked(runtime: Any, tmp_path: Path) -> None:
    """A one-step build from a plain tar context lands as the tagged image."""
    from tests.support.podman import IMAGE

    context = tmp_path / "context.tar"
    dockerfile = f"FROM {IMAGE}\nRUN echo built > /built\n".encode()
    with tarfile.open(context, "w") as tar:
        entry = tarfile.TarInfo("Dockerfile")
        entry.size = len(dockerfile)
        tar.addfile(entry, io.BytesIO(dockerfile))
    tag = f"localhost/ef-conformance:{runtime.device_id}"
    service = Service(image=tag, build=Build(digest="0" * 64))
    steps: list[str] = []
    await runtime.build(spec_for(runtime, service), context, steps.append)
    api = runtime.engine_api()
    try:
        assert (await asyncio.to_thread(api.images.inspect, tag))["Id"]
        assert any("RUN echo built" in step for step in steps)
    finally:
        await asyncio.to_thread(api.images.remove, tag, force=True)


async def test_callers_refuse_a_runtime_without_the_ability(runtime: Runtime) -> None:
    """What the agent does with a runtime lacking an ability: builds and engine
    work are refused by name, never attempted."""
    if not isinstance(runtime, cap.CanBuild):
        builds = Builds(lambda: "http://127.0.0.1:9", "unused", 1 << 20, None)
        service = Service(image="localhost/x:1", build=Build(context=".", digest="0" * 64))
        with pytest.raises(RuntimeFailure, match=f"the {runtime.name} runtime cannot build"):
            await builds.build(spec_for(runtime, service), runtime, lambda line: None)
    networks = isinstance(runtime, cap.HasNetworks) and isinstance(runtime, cap.HasVolumes)
    if networks and isinstance(runtime, SimRuntime):  # a container runtime with no engine
        assert RuntimeSet(container=runtime, process=None).engine() is None
