"""Run the server process (``edgefleet server``)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import uvicorn

from edgefleet.server.app import create_app
from edgefleet.server.settings import ServerSettings


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def uvicorn_config(
    settings: ServerSettings, announce: Callable[[str], None] | None = None, **extra: object
) -> uvicorn.Config:
    app = create_app(settings, announce=announce)
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        ws="websockets-sansio",
        ws_ping_interval=None,  # agents heartbeat; the server does not ping 10k sockets
        ws_max_size=8 * 1024 * 1024,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        proxy_headers=bool(settings.forwarded_allow_ips.strip()),
        forwarded_allow_ips=settings.forwarded_allow_ips,  # whose X-Forwarded-* to believe
        timeout_graceful_shutdown=5,
        **extra,  # type: ignore[arg-type]
    )


def run(settings: ServerSettings) -> None:
    configure_logging(settings.log_level)
    uvicorn.Server(uvicorn_config(settings)).run()
