"""``tcp`` streams to a workload (agent/tunnels.py) and the remembered address
behind them (agent/addresses.py): a real agent's parts (sim runtime), a real
mux pair in-process, and real TCP listeners on loopback addresses standing in
for the workload's container. The engine is asked where the service is once,
and again only when the job, the supervisor's observation or a failed
connection says the answer may have changed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgefleet.agent.part import AgentContext
from edgefleet.agent.runtimes.sim import SimRuntime
from edgefleet.agent.runtimes.workload import Workload
from edgefleet.agent.tunnels import Tunnels
from edgefleet.spec.model import AppSpec
from edgefleet.wire.messages import DesiredState
from edgefleet.wire.mux import Mux, Stream, StreamRefused
from edgefleet.wire.workload import JobAssignment
from tests.support.agents import agent_context

JOB = "j1"


def assignment(version: str = "1") -> JobAssignment:
    spec = AppSpec.model_validate({"services": {"web": {"image": "web:1", "expose": ["8080"]}}})
    return JobAssignment(
        job_id=JOB, project_id="default", application="web", version=version, spec=spec
    )


class CountingSim(SimRuntime):
    """The sim runtime, counting the engine lookups a proxied request makes."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    async def workloads(self, job_id: str | None = None) -> list[Workload]:
        if job_id is not None:
            self.lookups += 1
        return await super().workloads(job_id)


@dataclass
class Rig:
    ctx: AgentContext
    sim: CountingSim
    server: Mux
    port: int

    def run(self, workload_id: str, host: str, *, restarts: int = 0) -> None:
        """The engine now reports this container as the job's ``web`` service."""
        self.sim._workloads = {
            workload_id: Workload(
                id=workload_id,
                name=workload_id,
                job_id=JOB,
                service="web",
                revision="r",
                version="1",
                state="running",
                restarts=restarts,
                addresses=[host],
            )
        }

    async def get(self) -> bytes:
        """One exchange over a ``tcp`` stream: what the listener answered."""
        header = {"kind": "tcp", "target": "workload", "job": JOB, "service": "web"}
        stream = await self.server.open({**header, "port": self.port})
        await stream.wait_accepted(15)
        await stream.send(b"ping")
        await stream.close()
        return await stream.read_all()


async def listener(host: str, port: int, name: bytes) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4)
        writer.write(name)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, host, port)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    ctx = await agent_context(tmp_path, desired=DesiredState(generation=1, jobs=[assignment()]))
    sim = CountingSim()
    ctx.runtimes.container = ctx.runtimes.process = sim
    tunnels = Tunnels(ctx)
    muxes: list[Mux] = []

    async def to_agent(frame: bytes) -> None:
        muxes[1].feed(frame)

    async def to_server(frame: bytes) -> None:
        muxes[0].feed(frame)

    async def serve(stream: Stream) -> None:
        await tunnels.handlers[stream.header["kind"]](stream)

    muxes += [Mux(to_agent, odd=True), Mux(to_server, odd=False, accept=serve)]
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    yield Rig(ctx, sim, muxes[0], port)
    for mux in muxes:
        mux.close()


async def test_the_address_is_looked_up_once_for_many_requests(rig: Rig) -> None:
    server = await listener("127.0.0.1", rig.port, b"one")
    rig.run("c1", "127.0.0.1")
    try:
        assert [await rig.get() for _ in range(5)] == [b"one"] * 5
        assert rig.sim.lookups == 1
        await rig.ctx.jobs._observe()  # the supervisor's pass: still that container
        assert await rig.get() == b"one"
        assert rig.sim.lookups == 1
    finally:
        server.close()


@pytest.mark.parametrize(
    ("workload_id", "restarts"),
    [("c2", 0), ("c1", 1)],
    ids=["replaced by another container", "same container restarted elsewhere"],
)
async def test_a_changed_container_is_found_after_the_supervisors_pass(
    rig: Rig, workload_id: str, restarts: int
) -> None:
    old = await listener("127.0.0.1", rig.port, b"old")
    new = await listener("127.0.0.2", rig.port, b"new")
    try:
        rig.run("c1", "127.0.0.1")
        assert await rig.get() == b"old"
        rig.run(workload_id, "127.0.0.2", restarts=restarts)  # the old address still answers
        await rig.ctx.jobs._observe()
        assert await rig.get() == b"new"
        assert rig.sim.lookups == 2
    finally:
        old.close()
        new.close()


async def test_a_failed_connection_to_the_remembered_address_looks_up_once_more(
    rig: Rig,
) -> None:
    old = await listener("127.0.0.1", rig.port, b"old")
    rig.run("c1", "127.0.0.1")
    assert await rig.get() == b"old"
    old.close()
    await old.wait_closed()
    new = await listener("127.0.0.4", rig.port, b"new")
    try:
        rig.run("c2", "127.0.0.4")  # before the supervisor has seen it
        assert await rig.get() == b"new"
        assert rig.sim.lookups == 2
    finally:
        new.close()


async def test_a_changed_assignment_or_a_gone_service_is_not_served_from_memory(
    rig: Rig,
) -> None:
    server = await listener("127.0.0.1", rig.port, b"one")
    try:
        rig.run("c1", "127.0.0.1")
        assert await rig.get() == b"one"
        rig.ctx.jobs.desired(DesiredState(generation=2, jobs=[assignment("2")]))
        assert await rig.get() == b"one"
        assert rig.sim.lookups == 2  # the new assignment: asked again
        rig.ctx.jobs.desired(DesiredState(generation=3, jobs=[]))
        with pytest.raises(StreamRefused, match="does not run on this device"):
            await rig.get()
        rig.ctx.jobs.desired(DesiredState(generation=4, jobs=[assignment("2")]))
        rig.sim._workloads["c1"].state = "exited"
        await rig.ctx.jobs._observe()
        with pytest.raises(StreamRefused, match="is not running"):
            await rig.get()
    finally:
        server.close()
