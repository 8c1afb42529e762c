"""Run the server process (``edgefleet server``)."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import sys
from collections.abc import Callable

from edgefleet.server import footprint

footprint.keep_out()  # before the app's modules import httpx and FastAPI builds routes

import uvicorn  # noqa: E402

from edgefleet.heap import settle  # noqa: E402
from edgefleet.server.app import create_app  # noqa: E402
from edgefleet.server.bus.base import BusError, create_bus  # noqa: E402
from edgefleet.server.settings import ServerSettings  # noqa: E402

M_ARENA_MAX = -8  # mallopt(3)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives every thread that allocates its own malloc arena (up to eight
    per core) and keeps what was freed there resident. The server's threads
    (SQLite connections, ``to_thread``) allocate in bursts when a fleet connects;
    with two arenas ~16 KB less per connected device stays resident (issue 16,
    500 sim devices). Set before any thread starts; MALLOC_ARENA_MAX in the
    environment wins, and a libc without ``mallopt`` is left alone."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_ARENA_MAX, arenas)


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
        # uvicorn's websockets-sansio, keeping less per connection
        ws="edgefleet.server.gateway.websocket_protocol:LeanWebSocketProtocol",
        ws_ping_interval=None,  # agents heartbeat; the server does not ping 10k sockets
        ws_max_size=settings.max_websocket_message_bytes,  # larger: closed with 1009
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        proxy_headers=False,  # the app believes --forwarded-allow-ips itself (gateway/lane.py)
        timeout_graceful_shutdown=5,
        **extra,  # type: ignore[arg-type]
    )


async def _check_bus(settings: ServerSettings) -> None:
    bus = create_bus(settings.bus, settings.bus_options())
    await bus.start()
    await bus.close()


def run(settings: ServerSettings) -> None:
    """Serve until stopped. A bus that cannot be reached or refuses our
    credentials is reported in one line before anything starts (inside the
    app's start-up it would come out as a traceback)."""
    limit_malloc_arenas()
    configure_logging(settings.log_level)
    if settings.bus != "memory":
        try:
            asyncio.run(_check_bus(settings))
        except BusError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
    config = uvicorn_config(settings)
    settle()  # the app is built: keep the collector off what lives as long as the process
    uvicorn.Server(config).run()
