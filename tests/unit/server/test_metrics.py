"""The /metrics pieces without a server process: the exposition (parsed with
prometheus_client's parser), the request middleware on a small real app
(route templates, bounded labels, WebSockets, the lag monitor's lifespan), and
the fleet counts' cache against a real SQLite database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import uvicorn
from fastapi import APIRouter, FastAPI, WebSocket
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.asyncio.client import connect

from edgefleet.server.db.base import utcnow
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.devices_link import LinkCounts
from edgefleet.server.metrics.fleet import FleetCache, FleetCounts, ProjectDevices
from edgefleet.server.metrics.middleware import HttpMetrics, RouteTemplates
from edgefleet.server.metrics.registry import ServerMetrics, method_label, status_class
from edgefleet.server.projects.tables import Project

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        assert family.documentation, f"{family.name} has no HELP"
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, types


def test_exposition_of_fleet_counts() -> None:
    metrics = ServerMetrics("replica-a")
    counts = FleetCounts(
        devices={
            "north": ProjectDevices(total=5, online=3, ready=2),
            "empty": ProjectDevices(0, 0, 0),
        },
        jobs={"running": 2, "failed": 1},
        job_devices={"running": 4},
        data_records=1234,
        alerts_firing={"north": 2},
    )
    samples, types = parse(
        metrics.render(
            counts,
            LinkCounts(
                agents=7,
                frames=90,
                frames_deferred=12,
                collections_paced=3,
                thaws=2,
                connections_admitted=40,
                connections_refused=25,
            ),
        ).decode()
    )
    assert samples[("edgefleet_alerts_firing", (("project", "north"),))] == 2
    assert samples[("edgefleet_devices", (("online", "true"), ("project", "north")))] == 3
    assert samples[("edgefleet_devices", (("online", "false"), ("project", "north")))] == 2
    assert samples[("edgefleet_devices", (("online", "true"), ("project", "empty")))] == 0
    assert samples[("edgefleet_devices_ready", (("project", "north"),))] == 2
    assert samples[("edgefleet_jobs", (("state", "failed"),))] == 1
    assert samples[("edgefleet_job_devices", (("state", "running"),))] == 4
    assert samples[("edgefleet_data_records_stored_total", ())] == 1234
    assert samples[("edgefleet_agents_connected", ())] == 7
    assert samples[("edgefleet_agent_frames_total", ())] == 90
    assert samples[("edgefleet_agent_frames_deferred_total", ())] == 12
    assert samples[("edgefleet_gc_collections_paced_total", ())] == 3
    assert samples[("edgefleet_gc_thaws_total", ())] == 2
    assert samples[("edgefleet_agent_connections_admitted_total", ())] == 40
    assert samples[("edgefleet_agent_connections_refused_total", ())] == 25
    assert types["edgefleet_agent_connections_refused"] == "counter"
    assert types["edgefleet_agents_connected"] == "gauge"
    assert types["edgefleet_agent_frames_deferred"] == "counter"
    assert samples[("edgefleet_server_info", (("replica", "replica-a"), ("version", _v())))] == 1
    assert types["edgefleet_devices"] == "gauge"
    assert types["edgefleet_data_records_stored"] == "counter"
    assert types["edgefleet_http_requests"] == "counter"
    assert types["edgefleet_http_request_duration_seconds"] == "histogram"
    assert "process_resident_memory_bytes" in types
    assert not [name for (name, _), _v in samples.items() if name.endswith("_created")]


def _v() -> str:
    from edgefleet import __version__

    return __version__


def test_label_folding() -> None:
    assert [status_class(s) for s in (200, 302, 404, 503, 99, 700)] == [
        "2xx",
        "3xx",
        "4xx",
        "5xx",
        "other",
        "other",
    ]
    assert method_label("GET") == "GET"
    assert method_label("BREW") == "OTHER"  # a client cannot mint label values


def _app(metrics: ServerMetrics) -> FastAPI:
    app = FastAPI()
    router = APIRouter()

    @router.get("/things/{thing}")
    async def thing(thing: str) -> dict[str, str]:
        return {"thing": thing}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @router.websocket("/things/{thing}/ws")
    async def ws(websocket: WebSocket, thing: str) -> None:
        await websocket.accept()
        await websocket.receive_text()  # held open until the client speaks
        await websocket.close()

    app.include_router(router, prefix="/api/v9")
    app.add_middleware(
        HttpMetrics, metrics=metrics, lag_interval=0.05, templates=RouteTemplates(app)
    )
    return app


def _scrape(metrics: ServerMetrics) -> Samples:
    return parse(metrics.render(FleetCounts(), LinkCounts()).decode())[0]


async def test_requests_by_template_websockets_and_lag() -> None:
    """A real uvicorn on a free port: lifespan, HTTP and a WebSocket as in production."""
    from tests.support.procs import free_port

    metrics = ServerMetrics("r")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_app(metrics), port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for n in range(3):
                assert (await client.get(f"/api/v9/things/t{n}")).status_code == 200
            assert (await client.get("/nowhere/abc")).status_code == 404
            assert (await client.request("PROPFIND", "/api/v9/things/x")).status_code == 405
            assert (await client.get("/api/v9/boom")).status_code == 500
        async with connect(f"ws://127.0.0.1:{port}/api/v9/things/a/ws") as ws:
            held = _scrape(metrics)
            await ws.send("bye")
            await ws.wait_closed()
        await asyncio.sleep(0.2)  # the lag monitor has sampled by now
        samples = _scrape(metrics)
    finally:
        server.should_exit = True
        await serving
    assert serving.done() and serving.exception() is None
    route = "/api/v9/things/{thing}"
    ok = ("edgefleet_http_requests_total", (("method", "GET"), ("route", route), ("status", "2xx")))
    assert samples[ok] == 3
    unmatched = (("method", "GET"), ("route", "<unmatched>"), ("status", "4xx"))
    assert samples[("edgefleet_http_requests_total", unmatched)] == 1
    webdav = (("method", "OTHER"), ("route", route), ("status", "4xx"))
    assert samples[("edgefleet_http_requests_total", webdav)] == 1
    failed = (("method", "GET"), ("route", "/api/v9/boom"), ("status", "5xx"))
    assert samples[("edgefleet_http_requests_total", failed)] == 1
    assert samples[("edgefleet_http_request_duration_seconds_count", (("route", route),))] == 4
    assert not any("t1" in v or "abc" in v for (_n, labels) in samples for _k, v in labels)
    ws_route = (("route", "/api/v9/things/{thing}/ws"),)
    assert held[("edgefleet_websockets_open", ws_route)] == 1
    assert samples[("edgefleet_websockets_open", ws_route)] == 0
    lag = samples[("edgefleet_event_loop_lag_seconds", ())]
    assert 0 <= lag < 5


async def _add_device(
    db: AsyncSession, project: Project, name: str, *, online: bool, ready: bool = True
) -> None:
    device = Device(
        id=f"d-{name}",
        project_pk=project.pk,
        name=name,
        credential_hash=f"hash-{name}",
        runtime_healthy=ready,
    )
    db.add(device)
    await db.flush()
    if online:
        now = utcnow()
        db.add(
            Presence(
                device_pk=device.pk,
                replica="r",
                connected_at=now,
                expires_at=now + timedelta(minutes=5),
            )
        )
    await db.commit()


async def test_fleet_counts_cached(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as db:
        north, empty = Project(id="p-north", name="north"), Project(id="p-empty", name="empty")
        db.add_all([north, empty])
        await db.commit()
        await _add_device(db, north, "a", online=True)
        await _add_device(db, north, "b", online=True, ready=False)
        await _add_device(db, north, "c", online=False)
    cache = FleetCache(max_age=60)
    first = await cache.get(sessions)
    assert first.devices == {
        "north": ProjectDevices(total=3, online=2, ready=1),
        "empty": ProjectDevices(total=0, online=0, ready=0),
    }
    assert first.jobs == {} and first.job_devices == {} and first.data_records == 0
    async with sessions() as db:
        await _add_device(db, north, "d", online=True)
    assert await cache.get(sessions) is first  # within max_age: no query
    fresh = await FleetCache(max_age=0).get(sessions)
    assert fresh.devices["north"] == ProjectDevices(total=4, online=3, ready=2)


async def test_bus_traffic_counted_on_a_real_memory_bus() -> None:
    import pytest

    from edgefleet.server.bus.base import BusError, BusMessage
    from edgefleet.server.bus.memory import MemoryBus
    from edgefleet.server.metrics.bus import CountedBus

    metrics = ServerMetrics("r")
    bus = CountedBus(MemoryBus(), metrics)
    await bus.start()
    got: list[bytes] = []

    async def echo(message: BusMessage) -> None:
        got.append(message.data)
        if message.reply:
            await bus.publish(message.reply, message.data)

    subscription = await bus.subscribe("ef.echo", echo)
    await bus.publish("ef.echo", b"a")
    assert await bus.request("ef.echo", b"b", timeout=2) == b"b"
    with pytest.raises(BusError):  # nobody answers: counted as an error
        await bus.request("ef.nobody", b"c", timeout=0.2)
    await asyncio.sleep(0.05)
    samples, types = parse(metrics.render(FleetCounts(), LinkCounts()).decode())
    await subscription.unsubscribe()
    await bus.close()
    assert got == [b"a", b"b"]
    assert samples[("edgefleet_bus_messages_total", (("direction", "requested"),))] == 1
    assert samples[("edgefleet_bus_messages_total", (("direction", "published"),))] == 2
    assert samples[("edgefleet_bus_messages_total", (("direction", "received"),))] == 2
    assert samples[("edgefleet_bus_errors_total", (("operation", "request"),))] >= 1
    assert samples[("edgefleet_bus_subscriptions", ())] == 1
    assert types["edgefleet_bus_messages"] == "counter"
    after, _ = parse(metrics.render(FleetCounts(), LinkCounts()).decode())
    assert after[("edgefleet_bus_subscriptions", ())] == 0
