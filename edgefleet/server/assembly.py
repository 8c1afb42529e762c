"""The one place the server's long-lived parts are built and put on the context.

Feature modules never assign onto :class:`~edgefleet.server.context.ServerContext`;
they read what is built here. The order, and why:

1. the server's key (``--secret-key`` or ``<data dir>/secret.key``, made on first
   start): registry passwords, secrets and webhook secrets are sealed with it;
2. the context with its infrastructure: settings, engine, bus, event log,
   limits, registry logins (they need only the key) and the single sign-on
   client (None when ``--oidc-issuer`` is not set; discovery waits for the
   first sign-in, so a provider that is down does not stop the server);
3. the hub (the device gateway), which needs the context;
4. the parts built from the context and the hub: the workload render step,
   the scheduler, the computations relay.

Building runs nothing: :mod:`edgefleet.server.app` starts the parts, in its own
stated order, once everything exists. Only this module (and the gateway's own
endpoints, through ``app.state.hub``) knows the concrete :class:`Hub`.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from edgefleet.server.auth.oidc_config import OidcConfig
from edgefleet.server.auth.oidc_provider import OidcProvider
from edgefleet.server.bus.base import Bus
from edgefleet.server.computations.relay import Relay
from edgefleet.server.context import ServerContext
from edgefleet.server.db import engine as db_engine
from edgefleet.server.events.service import EventLog
from edgefleet.server.gateway.hub import Hub
from edgefleet.server.limits import Limits
from edgefleet.server.registries.crypto import SecretBox, load_key
from edgefleet.server.registries.service import RegistryAuth
from edgefleet.server.scheduler.loop import Scheduler
from edgefleet.server.settings import ServerSettings
from edgefleet.server.variables.render import WorkloadConfig


def server_key(settings: ServerSettings) -> SecretBox:
    """The box sealing values at rest, with the configured or stored key."""
    secret = settings.secret_key
    return SecretBox(load_key(secret.get_secret_value() if secret else None, settings.data_dir))


def build(settings: ServerSettings, engine: AsyncEngine, bus: Bus) -> tuple[ServerContext, Hub]:
    """Every part, in the order above; the hub is returned too, for the gateway's
    endpoints (services reach it through ``ctx.hub`` as a ``DeviceLink``)."""
    box = server_key(settings)
    sessions = db_engine.sessionmaker(engine)
    config = OidcConfig.from_settings(settings)
    ctx = ServerContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        bus=bus,
        events=EventLog(sessions, bus),
        limits=Limits(settings),
        registry_auth=RegistryAuth(box),
        oidc=OidcProvider(config) if config is not None else None,
    )
    hub = Hub(ctx)
    ctx.hub = hub
    ctx.workload_config = WorkloadConfig(ctx, box)
    ctx.scheduler = Scheduler(ctx)
    ctx.computations = Relay(ctx)
    return ctx, hub
