"""Run the agent process (``edgefleet agent``): logging, signals, exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import os
import signal
import sys
from collections.abc import Callable

from edgefleet.agent.agent import Agent
from edgefleet.agent.errors import AgentError, DeviceRevoked
from edgefleet.agent.settings import AgentSettings

log = logging.getLogger("edgefleet.agent")


def configure_logging(settings: AgentSettings) -> None:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    handlers.append(
        logging.handlers.RotatingFileHandler(
            settings.state_dir / "agent.log", maxBytes=2 * 1024 * 1024, backupCount=2
        )
    )
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


async def _serve(agent: Agent) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, agent.stopping.set)
    await agent.run()


def run(settings: AgentSettings, start_again: Callable[[], None] | None = None) -> int:
    """Returns the process exit code: 0 stopped, 2 bad configuration or
    refused enrollment, 3 device deleted on the server.

    ``start_again`` (the lean entry's re-exec with the same settings, which does
    not return): given, a first start that enrolls the device ends there and the
    process starts afresh from the stored enrollment, leaving what enrolling
    loaded (cryptography, urllib) out of a daemon that may run for months."""
    configure_logging(settings)
    agent = Agent(settings, restart_after_enrolling=start_again is not None)
    try:
        asyncio.run(_serve(agent))
    except DeviceRevoked as exc:
        log.error("stopping for good: %s", exc.message)
        print(
            f"edgefleet agent: this device was removed from the server: {exc.message}",
            file=sys.stderr,
        )
        return exc.exit_code
    except AgentError as exc:
        print(f"edgefleet agent: {exc.message}", file=sys.stderr)
        return exc.exit_code
    if agent.handover is not None:
        agent.handover()  # an upgrade: execs the new version, does not return
    if agent.enrolled and start_again is not None:
        start_again()
    if agent.restart_requested:
        log.warning("restarting the agent")
        os.execv(sys.executable, [sys.executable, "-m", "edgefleet", *sys.argv[1:]])
    return 0
