"""Background tasks shared by the agent and the server: stopping a group of them,
and a loop that must outlive a failing pass.

Stopping is written once so that every owner of background tasks cancels them
all first and only then waits (waiting on one while the others still run would
let them act after stop began), and never hides an error a task died of.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any


async def cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks``, then wait for each to finish. A task that had already
    failed re-raises its error here: a stop must not hide a crashed loop."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def every(
    interval: float, work: Callable[[], Awaitable[None]], log: logging.Logger, what: str
) -> None:
    """Run ``work`` every ``interval`` seconds until cancelled. A failing pass is
    logged (once, with its traceback) and the next one runs on time: a loop that
    keeps the fleet's state fresh must survive a bug or a database hiccup in one
    pass, which is why the catch is broad here and nowhere else."""
    while True:
        await asyncio.sleep(interval)
        try:
            await work()
        except Exception:  # a supervisor loop: one failed pass must not end it
            log.exception("%s failed", what)
