"""Build the server: the FastAPI app and everything it starts and stops.

:func:`create_app` makes the data dir and includes every feature's routes (the
:func:`_features` table, the gateway's endpoints, the portal, middleware).
The lifespan then starts, in this order:

1. migrations (in a child process), the engine, the bus (its traffic counted on
   ``/metrics``);
2. :func:`edgefleet.server.assembly.build`: the context and every long-lived
   part (key, event log, limits, registry logins, single sign-on, hub, render
   step, scheduler, relay), built, none running yet; the Compose parsing
   processes are warmed up;
3. the features' start hooks, in the table's order (each registers its agent
   message handlers and starts its loops);
4. the event log's writer, the hub's presence loops, the stream guard;
5. bootstrap (the admin and the default project; replicas may race here).

Shutdown: guard, hub, limits, the hooks' stoppers in reverse, the event log,
the bus, the engine.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet import __version__
from edgefleet.server import assembly
from edgefleet.server.auth import service as auth_service
from edgefleet.server.auth.freshness import StreamGuard
from edgefleet.server.auth.freshness_asgi import FreshStreams
from edgefleet.server.auth.routes import router as auth_router
from edgefleet.server.bus.base import create_bus
from edgefleet.server.context import ServerContext
from edgefleet.server.db import engine as db_engine
from edgefleet.server.db import migrate
from edgefleet.server.devices.routes import router as devices_router
from edgefleet.server.devices.summary import router as summary_router
from edgefleet.server.errors import install_handlers
from edgefleet.server.events.routes import router as events_router
from edgefleet.server.gateway.endpoint import router as agent_ws_router
from edgefleet.server.gateway.enroll import DirectEnroll
from edgefleet.server.gateway.enroll import router as enroll_router
from edgefleet.server.gateway.lane import FleetApp
from edgefleet.server.keys.routes import router as keys_router
from edgefleet.server.limits import BodyLimit
from edgefleet.server.metrics.bus import CountedBus
from edgefleet.server.projects.routes import router as projects_router
from edgefleet.server.settings import ServerSettings
from edgefleet.wire.messages import DesiredState

log = logging.getLogger("edgefleet.server")

API = "/api/v1"

Stop = Callable[[], Awaitable[None]]
StartHook = Callable[[ServerContext], Awaitable[Stop | None]]
# Feature modules add themselves here: (routers, start hook). Keeping the list
# in one place makes the server's shape readable at a glance.
Feature = tuple[list[APIRouter], StartHook | None]


async def _stop_oidc(ctx: ServerContext) -> Stop | None:
    """Single sign-on: built by the assembly when configured; closed at shutdown."""
    return ctx.oidc.close if ctx.oidc is not None else None


async def _start_jobs(ctx: ServerContext) -> Stop:
    """Jobs: status ingestion, desired state on connect, the scheduler."""
    from edgefleet.server.jobs import desired
    from edgefleet.server.jobs.status import StatusSink

    sink = StatusSink(ctx)
    await sink.start()

    async def desired_state(db: AsyncSession, device_pk: int) -> DesiredState:
        return await desired.for_device(ctx, db, device_pk)

    ctx.hub.desired_from(desired_state)
    await ctx.scheduler.start()

    async def stop() -> None:
        await ctx.scheduler.stop()
        await sink.stop()

    return stop


async def _start_computations(ctx: ServerContext) -> Stop:
    """Federated computations: dataset reports, the relay of fed messages, orchestrators."""
    await ctx.computations.start()
    return ctx.computations.stop


def _features() -> list[Feature]:
    from edgefleet.server.agent_releases import rollout as agent_rollouts
    from edgefleet.server.agent_releases.routes import router as agent_releases_router
    from edgefleet.server.alerts import runner as alert_runner
    from edgefleet.server.alerts.routes import router as alerts_router
    from edgefleet.server.applications.routes import router as applications_router
    from edgefleet.server.auth.oidc_routes import router as oidc_router
    from edgefleet.server.computations.routes import router as computations_router
    from edgefleet.server.data import ingest as data_ingest
    from edgefleet.server.data.routes import router as data_router
    from edgefleet.server.jobs.routes import router as jobs_router
    from edgefleet.server.loans.routes import router as loans_router
    from edgefleet.server.readiness.routes import router as readiness_router
    from edgefleet.server.registries.routes import router as registries_router
    from edgefleet.server.remote.actions import router as actions_router
    from edgefleet.server.remote.exec import router as exec_router
    from edgefleet.server.remote.logs import router as logs_router
    from edgefleet.server.reservations import clock as reservation_clock
    from edgefleet.server.reservations.routes import router as reservations_router
    from edgefleet.server.rollouts.routes import router as rollouts_router
    from edgefleet.server.schedules import ingest as schedule_runs
    from edgefleet.server.schedules.routes import router as schedule_runs_router
    from edgefleet.server.secrets.routes import router as secrets_router
    from edgefleet.server.telemetry import ingest as telemetry_ingest
    from edgefleet.server.telemetry.routes import router as telemetry_router
    from edgefleet.server.variables.routes import router as variables_router

    return [
        (
            [
                auth_router,
                projects_router,
                keys_router,
                summary_router,
                devices_router,
                events_router,
            ],
            None,
        ),
        ([enroll_router], None),
        ([oidc_router], _stop_oidc),  # single sign-on (OpenID Connect)
        ([registries_router], None),
        ([secrets_router, variables_router], None),
        ([applications_router, jobs_router, rollouts_router], _start_jobs),
        ([exec_router, logs_router, actions_router], None),
        ([computations_router], _start_computations),
        ([data_router], data_ingest.start),
        # a shared testbed: loans, reservations, declared peripherals (issue 20)
        ([loans_router, reservations_router, readiness_router], reservation_clock.start),
        ([schedule_runs_router], schedule_runs.start),  # periodic jobs (issue 19)
        ([agent_releases_router], agent_rollouts.start),  # agent upgrades over the air (issue 18)
        ([], _start_local_actions),  # owners' actions on devices, reported later (issue 21)
        ([telemetry_router], telemetry_ingest.start),  # device health, stored logs (issue 18)
        ([alerts_router], alert_runner.start),  # alert rules, webhooks (issue 18)
        ([_instances_router(), _volumes_router()], None),  # personal instances, volumes (issue 21)
        ([_build_contexts_router()], None),  # images built on the device (issue 21)
    ]


def _build_contexts_router() -> APIRouter:
    from edgefleet.server.applications.context_routes import router

    return router


def _volumes_router() -> APIRouter:
    from edgefleet.server.volumes.routes import router

    return router


def _instances_router() -> APIRouter:
    from edgefleet.server.instances.routes import router

    return router


async def _start_local_actions(ctx: ServerContext) -> None:
    from edgefleet.server.devices import local_actions

    await local_actions.start(ctx)


async def _bootstrap(ctx: ServerContext, admin_token: str | None) -> auth_service.Bootstrap:
    """Replicas starting together race to create the admin and the default
    project; the losers see the unique constraint fail and simply try again."""
    from sqlalchemy.exc import IntegrityError

    for attempt in range(5):
        try:
            async with ctx.session() as db:
                return await auth_service.bootstrap(db, admin_token)
        except IntegrityError:
            await asyncio.sleep(0.2 * (attempt + 1))
    async with ctx.session() as db:
        return await auth_service.bootstrap(db, admin_token)


def create_app(
    settings: ServerSettings, *, announce: Callable[[str], None] | None = None
) -> FastAPI:
    announce = announce or (lambda line: print(line, file=sys.stderr, flush=True))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = db_engine.async_url(settings.database_url, settings.data_dir)
    features = _features()
    guard = StreamGuard(settings.stream_recheck_interval)  # streams end with their rights

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = db_engine.create_engine(url)
        if not await migrate.at_head(engine):
            await migrate.upgrade_in_child(url, settings.log_level)  # alembic never loads here
            await engine.dispose()  # no connection opened before the schema changed
        # bus traffic counted on /metrics (installed by create_app, below)
        bus = CountedBus(create_bus(settings.bus, settings.bus_options()), app.state.metrics)
        await bus.start()
        ctx, hub = assembly.build(settings, engine, bus)
        ctx.limits.warm_up()  # the Compose parsing processes
        app.state.ctx = ctx
        app.state.hub = hub  # the gateway's own endpoints; services use ctx.hub
        stoppers: list[Stop] = []
        for _routers, start in features:
            if start is not None:
                stopper = await start(ctx)
                if stopper is not None:
                    stoppers.append(stopper)
        await ctx.events.start()
        await hub.start()
        await guard.start(ctx)
        boot = await _bootstrap(ctx, settings.admin_token)
        if boot.admin_token:
            announce(f"admin token (shown once, store it): {boot.admin_token}")
        log.info("edgefleet server %s ready (replica %s)", __version__, ctx.replica)
        try:
            yield
        finally:
            await guard.stop()
            await hub.stop()
            ctx.limits.close()
            for stopper in reversed(stoppers):
                await stopper()
            await ctx.events.stop()
            await bus.close()
            await engine.dispose()

    app = FleetApp(
        title="edgefleet",
        version=__version__,
        description="Run containerized applications on fleets of edge devices behind NAT.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    install_handlers(app)

    @app.get(f"{API}/health", tags=["server"])
    async def health() -> dict[str, Any]:
        ctx: ServerContext = app.state.ctx
        database = "ok"
        try:
            async with ctx.session() as db:
                await db.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:  # reported, not raised: health says why
            database = f"error: {exc.__class__.__name__}"
        return {
            "status": "ok" if database == "ok" else "degraded",
            "version": __version__,
            "replica": ctx.replica,
            "database": database,
            "bus": "memory" if settings.bus == "memory" else "nats",
            "agents_connected": len(ctx.hub.sessions),
        }

    for routers, _start in features:
        for router in routers:
            app.include_router(router, prefix=API)
    from edgefleet.server.proxy.hosts import HostRouter
    from edgefleet.server.proxy.hosts import router as proxy_auth_router
    from edgefleet.server.proxy.routes import router as proxy_router
    from edgefleet.server.remote.forward import router as forward_router

    app.include_router(agent_ws_router)
    app.include_router(forward_router)
    app.include_router(proxy_router)
    from edgefleet.server.proxy.grants import Grants

    # the proxy's remembered answers, forgotten when the guard hears of a change
    app.state.proxy_grants = Grants(settings.stream_recheck_interval)
    guard.on_change(app.state.proxy_grants.forget)
    app.include_router(proxy_auth_router)
    from edgefleet.server import portal

    portal.install(app)
    app.add_middleware(DirectEnroll)  # enrollments: not through the routing stack; inside the limit
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        exempt=("/proxy/", f"{API}/agent/data", "/portal/static", f"{API}/build-contexts"),
    )
    from edgefleet.server.proxy.paths import ProxyPaths

    app.add_middleware(ProxyPaths)  # /proxy/…: not through the routing stack either
    apps_domain = settings.resolved_apps_domain()
    if apps_domain:
        app.add_middleware(HostRouter, domain=apps_domain)
        app.apps_domain = apps_domain  # the agents' lane leaves an app's host to the router
    if settings.forwarded_allow_ips.strip():
        app.believe_proxies(settings.forwarded_allow_ips)  # whose X-Forwarded-* to believe
    app.add_middleware(FreshStreams, guard=guard)  # outside the host router: sees app hosts too
    from edgefleet.server.metrics.routes import install as install_metrics

    install_metrics(app, settings)  # GET /metrics; its middleware wraps all of the above
    return app
