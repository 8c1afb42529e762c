"""The WebSocket every agent holds open: ``/api/v1/agent/connect``.

Handshake: the agent authenticates with its device credential (Bearer), the
server accepts, the agent sends :class:`Hello`, the server answers
:class:`Welcome` and the device's :class:`DesiredState`. A credential that
is unknown (device deleted) gets :class:`Revoked` and close code 4401, which
the agent treats as final. Past the admission rate (``admission.py``) the
request is refused with 503 and ``Retry-After`` before any database work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket
from sqlalchemy import select, update

from edgefleet.server.agent_session import AgentSession, DeviceRef
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import utcnow
from edgefleet.server.devices.tables import Device
from edgefleet.server.events import audit
from edgefleet.server.gateway import generations
from edgefleet.server.gateway.credentials import Known
from edgefleet.server.gateway.hub import Hub
from edgefleet.server.gateway.transport import StarletteTransport
from edgefleet.server.jobs.eligibility import facts_key
from edgefleet.wire.link import Link, TransportClosed
from edgefleet.wire.messages import (
    FED_BINARY_PROTOCOL,
    MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
    Applied,
    CommandResult,
    FactsChanged,
    Heartbeat,
    Hello,
    Message,
    ProtocolError,
    Revoked,
    Welcome,
    decode,
    encode,
)
from edgefleet.wire.mux import Stream

log = logging.getLogger(__name__)
router = APIRouter()

HELLO_TIMEOUT = 15.0
REVOKED_CODE = 4401
BUSY_CODE = 4503  # over the admission rate; the reason reads "retry-after=<seconds>"
AGENT_PATH = "/api/v1/agent/connect"


def _credential(websocket: WebSocket) -> str | None:
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@router.websocket(AGENT_PATH)
async def agent_connect(websocket: WebSocket) -> None:
    ctx: ServerContext = websocket.app.state.ctx
    hub: Hub = websocket.app.state.hub
    wait = hub.admission.admit()
    if wait is not None:
        line = hub.admission.summary()
        if line:
            log.info(line)
        await _turn_away(websocket, wait)
        return
    try:
        device = await hub.credentials.find(_credential(websocket))
        await websocket.accept()
    finally:  # accepted, or the agent left (or the lookup failed) first: room for the next
        hub.admission.finished()
    # Counted here, not by the metrics middleware: the agents' lane (lane.py) skips it.
    opened = websocket.app.state.metrics.websockets.labels(AGENT_PATH)
    opened.inc()
    try:
        transport = StarletteTransport(websocket, hub.pacer)
        if device is None:
            reason = (
                "this device's credential is not valid: the device was deleted from the server "
                "or never enrolled there; enroll again with a provisioning key"
            )
            with contextlib.suppress(TransportClosed):
                await transport.send_text(encode(Revoked(reason=reason)))
            await transport.close(REVOKED_CODE, "credential revoked")
            return
        try:
            first = await asyncio.wait_for(transport.receive(), HELLO_TIMEOUT)
            hello = decode(first)
            if not isinstance(hello, Hello):
                raise ProtocolError("expected hello")
        except (TimeoutError, TransportClosed, ProtocolError) as exc:
            log.info("agent %s failed the handshake: %s", device.id, exc)
            await transport.close(4002, "handshake failed")
            return
        if hello.protocol < MIN_PROTOCOL_VERSION:
            # A newer agent speaks our version too (it accepts the welcome's
            # `protocol`); only one older than we still understand is turned away.
            log.info("agent %s speaks protocol %s, too old", device.id, hello.protocol)
            await transport.close(
                4002,
                f"protocol {hello.protocol} not supported: this server speaks "
                f"{MIN_PROTOCOL_VERSION}..{PROTOCOL_VERSION}",
            )
            return

        changes = _hello_changes(device, hello)
        ref = DeviceRef(pk=device.pk, id=device.id, name=device.name, project_pk=device.project_pk)
        audit.policy_changed(ctx.events, ref, device.facts, changes.get("facts"))

        handlers = _Handlers(ctx, hub)
        link = Link(
            transport,
            odd=True,
            on_message=handlers.on_message,
            on_stream=handlers.on_stream,
            on_frame=handlers.on_frame,
        )
        session = handlers.session = AgentSession(ref, link)
        session.protocol = min(hello.protocol, PROTOCOL_VERSION)
        session.applied_generation = hello.applied_generation
        session.runtime_healthy = hello.runtime_healthy
        await session.send(
            Welcome(
                device_id=device.id,
                name=device.name,
                project=device.project,
                heartbeat_interval=ctx.settings.heartbeat_interval,
                server_time=utcnow(),
                replica=ctx.replica,
                # the version both speak; none for a protocol-1 agent (it knows no such field)
                protocol=min(hello.protocol, PROTOCOL_VERSION) if hello.protocol >= 2 else None,
            )
        )
        # Read by attach once the session is reachable: a change committed from now
        # on is pushed to this session; one committed before shows here. Skipping
        # the snapshot when the agent already applied the latest generation makes
        # a reconnect storm of 10,000 devices cheap.
        generation = await hub.attach(session, hello, device_changes=changes)
        new_facts = changes.get("facts")
        if isinstance(new_facts, dict) and facts_key(device.facts or {}) != facts_key(new_facts):
            # New capabilities (a camera plugged in, a runtime installed): selector
            # jobs may now take this device, or rule it out.
            await hub.fleet_changed(device.project_pk)
        if generation != hello.applied_generation:
            async with ctx.session() as db:
                await session.send(await hub.desired_state(db, device.pk))
            del db
        # This frame lives as long as the connection: keep only the session. The
        # device row, its facts, the hello and the closed database session (tens of
        # KB of Python objects) would otherwise stay in memory for every connected agent.
        del device, hello, first, changes, new_facts, handlers
        _spend_handshake(websocket)
        try:
            await link.run()
        finally:
            reason = f"connection closed ({link.close_code})"
            await hub.detach(session, reason)
    finally:
        opened.dec()


class _Handlers:
    """What a connected agent's link calls: one small object where three
    closures and their cells took ~0.5 KB more per connected device (issue 16)."""

    __slots__ = ("ctx", "hub", "session")

    def __init__(self, ctx: ServerContext, hub: Hub) -> None:
        self.ctx = ctx
        self.hub = hub
        self.session: AgentSession  # set once the session exists, before the link runs

    async def on_message(self, message: Message) -> None:
        await _on_message(self.ctx, self.hub, self.session, message)

    async def on_stream(self, stream: Stream) -> None:
        await self.hub.accept_stream(self.session, stream)

    async def on_frame(self, data: bytes) -> None:  # typed binary frames: federated messages
        handler = self.hub.frame_handler
        if handler is not None and self.session.protocol >= FED_BINARY_PROTOCOL:
            await handler(self.session, data)


SPENT_SCOPE_KEYS = ("asgi", "extensions", "subprotocols", "state", "raw_path")
"""Scope entries only a handshake reads (uvicorn's own log lines after it read
the client, path and query string, which stay)."""


def _spend_handshake(websocket: WebSocket) -> None:
    """Empty the upgrade request's headers, in place (the scope's list is the
    one Starlette's and uvicorn's objects hold), and drop the scope's other
    handshake-only entries: the credential was read from the headers and
    nothing reads any of them again, yet they would stay in memory as long as
    the agent stays connected (~1.5 KB per connected device, issue 16), the
    device credential among them."""
    scope = websocket.scope
    headers = scope.get("headers")
    if isinstance(headers, list):
        headers.clear()
    for key in SPENT_SCOPE_KEYS:
        scope.pop(key, None)


async def _turn_away(websocket: WebSocket, wait: int) -> None:
    """Over the admission rate: close code 4503 with ``retry-after=<seconds>`` as
    the reason, before any database work. (An HTTP 503 denial would be cheaper
    still, but uvicorn's sans-I/O WebSocket protocol logs every denial as an
    error; agents honour a 503 with ``Retry-After`` too, e.g. from a proxy.)"""
    await websocket.accept()
    await StarletteTransport(websocket).close(BUSY_CODE, f"retry-after={wait}")


def _hello_changes(device: Known, hello: Hello) -> dict[str, object]:
    """Columns of the device row to update from its hello (written together with
    its presence, in one transaction)."""
    facts = hello.facts.model_dump(mode="json")
    values: dict[str, object] = {
        "applied_generation": hello.applied_generation,
        "runtime_healthy": hello.runtime_healthy,
    }
    if facts != device.facts:
        values["facts"] = facts
    if hello.facts.agent_version != device.agent_version:
        values["agent_version"] = hello.facts.agent_version
    if hello.public_key and hello.public_key != device.public_key:
        values["public_key"] = hello.public_key
    return values


async def _on_message(
    ctx: ServerContext, hub: Hub, session: AgentSession, message: Message
) -> None:
    session.touch()
    if isinstance(message, Heartbeat):
        await _note_generation(ctx, session, message.applied_generation, message.runtime_healthy)
    elif isinstance(message, Applied):
        await _note_generation(ctx, session, message.generation, session.runtime_healthy)
    elif isinstance(message, CommandResult):
        session.resolve(message)
    elif isinstance(message, FactsChanged):
        async with ctx.session() as db:
            before = await db.scalar(select(Device.facts).where(Device.pk == session.device.pk))
            facts = message.facts.model_dump(mode="json")
            audit.policy_changed(ctx.events, session.device, before, facts)
            await db.execute(
                update(Device)
                .where(Device.pk == session.device.pk)
                .values(
                    facts=message.facts.model_dump(mode="json"),
                    agent_version=message.facts.agent_version,
                )
            )
            await db.commit()
        await hub.fleet_changed(session.device.project_pk)
    else:
        await hub.dispatch(session, message)


async def _note_generation(
    ctx: ServerContext, session: AgentSession, generation: int, healthy: bool
) -> None:
    if generation == session.applied_generation and healthy == session.runtime_healthy:
        return
    session.applied_generation = generation
    session.runtime_healthy = healthy
    # With the other agents' reports of the moment: after a fan-out all apply at once.
    await generations.note(ctx.sessions, session.device.pk, generation, healthy)
