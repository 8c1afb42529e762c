"""Desired state sent again by the scheduler's repeat (``desired.resend``)
against a real SQLite file: a device whose connection here was already sent
its current generation is skipped (it is still applying it); one whose
connection was sent an older generation, or none, gets it."""

from __future__ import annotations

from sqlalchemy import select

from edgefleet.server.agent_session import AgentSession, DeviceRef
from edgefleet.server.context import ServerContext
from edgefleet.server.devices.tables import Device
from edgefleet.server.jobs import desired
from edgefleet.server.jobs.assign import assign
from edgefleet.wire.link import Link
from edgefleet.wire.messages import DesiredState, Message
from tests.unit.server.gateway.test_hub import MemoryTransport
from tests.unit.server.jobs.test_assign import ARM, World


async def _ignore(_message: Message) -> None:
    return None


async def test_a_repeat_skips_connections_already_sent_the_generation(
    ctx: ServerContext,
) -> None:
    async with ctx.sessions() as db:
        world = await World(db).setup()
        for name in ("sent", "behind", "fresh"):
            await world.device(name, {"site": "lab"}, ARM)
        job = await world.job(selector="site=lab")
        await desired.bump(db, await assign(db, job, "1"))
        await db.commit()
        devices = (
            await db.execute(select(Device.pk, Device.id, Device.name, Device.desired_generation))
        ).all()
    sessions: dict[str, AgentSession] = {}
    generation: dict[str, int] = {}
    for pk, device_id, name, wanted in devices:
        ref = DeviceRef(pk=pk, id=device_id, name=name, project_pk=world.project_pk)
        sessions[name] = AgentSession(ref, Link(MemoryTransport(), odd=True, on_message=_ignore))
        ctx.hub.sessions[device_id] = sessions[name]  # type: ignore[index]  # the hub's dict
        generation[name] = wanted
    await sessions["sent"].send(DesiredState(generation=generation["sent"]))
    await sessions["behind"].send(DesiredState(generation=generation["behind"] - 1))

    sent_to = await desired.resend(ctx, [pk for pk, *_ in devices])

    assert sent_to == 2  # "behind" and "fresh"; "sent" is applying what it was sent
    assert all(session.sent_generation == generation[n] for n, session in sessions.items())
