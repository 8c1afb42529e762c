"""What runs first in the server's worker threads and Compose-parsing processes.

Kept apart from :mod:`edgefleet.server.limits` on purpose: a parsing process
is started with ``spawn`` and imports the module of its initializer. From
here that costs the standard library only; from ``limits`` it cost the
server's settings, Starlette and pydantic too (~0.35 s of CPU and several MB
per process, at every server start).
"""

from __future__ import annotations

import logging
import os
import threading
import time

log = logging.getLogger(__name__)

WORKER_NICENESS = 10
"""Worker threads and processes yield the CPU to the event loop (Linux: the
niceness is per thread and inherited by argon2's own threads)."""


def start_parser(server: int) -> None:
    """Runs first in each parsing process: a lower CPU priority, and an exit of its
    own once the server is gone. A server killed with SIGKILL runs no clean-up,
    and a pool worker would otherwise wait on its queue for ever (re-parented to
    init), holding memory."""
    lower_priority()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != server:
                os._exit(0)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def lower_priority() -> None:
    if not hasattr(os, "setpriority"):
        return  # not a Unix: same priority then
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
    except OSError as exc:  # not allowed: same priority then
        log.debug("workers keep the server's CPU priority: %s", exc)
