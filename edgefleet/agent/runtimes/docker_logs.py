"""A container's log stream, read through the Engine API.

The engine client's stream is blocking, so a worker thread reads it into a
bounded queue and the event loop splits it into :class:`LogLine` items;
closing the reader closes the stream (which wakes the thread). Apart from :mod:`.docker` so that the runtime stays about
the engine's objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from edgefleet.agent.engine import EngineClient, EngineError, NotFound
from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.runtimes.workload import LogLine

log = logging.getLogger(__name__)


def parse_time(value: str | None) -> datetime | None:
    """An engine's timestamp (RFC 3339, nanoseconds, any offset) to the second, UTC;
    ``None`` for an unset one (``0001-01-01…``)."""
    if not value or value.startswith("0001-"):
        return None
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", value)
    if not match:
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)
    return None


async def stream(
    client: EngineClient,
    workload_id: str,
    tail: int | None,
    since: datetime | None,
    follow: bool,
) -> AsyncIterator[LogLine]:
    """:meth:`DockerRuntime.logs`: the engine's blocking stream read in a worker
    thread, handed over through a bounded queue, split into lines."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=1000)
    try:
        source = await asyncio.to_thread(
            client.containers.logs, workload_id, follow=follow, tail=tail, since=since
        )
    except NotFound:
        return
    except (EngineError, OSError) as exc:
        raise RuntimeFailure(f"reading logs: {exc}") from exc

    closed = threading.Event()

    def pump() -> None:
        try:
            for chunk in source:
                asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()
        except (EngineError, OSError) as exc:
            if not closed.is_set():  # else: closed by the reader, as asked
                log.warning("logs of %s ended early: %s", workload_id[:12], exc)
        finally:
            asyncio.run_coroutine_threadsafe(queue.put(None), loop)

    thread = loop.run_in_executor(None, pump)
    buffer = b""
    try:
        while True:
            chunk = await queue.get()
            if chunk is None:
                break
            buffer += chunk
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                yield _log_line(raw)
        if buffer:
            yield _log_line(buffer)
    finally:
        closed.set()
        source.close()
        try:
            await asyncio.wait_for(asyncio.shield(thread), 2)
        except TimeoutError:
            log.debug("the log reader of %s is still waiting on the engine", workload_id[:12])


def _log_line(raw: bytes) -> LogLine:
    text = raw.decode(errors="replace")
    stamp, _, rest = text.partition(" ")
    parsed = parse_time(stamp)
    if parsed is None:
        return LogLine(stream="stdout", time=None, text=text)
    return LogLine(stream="stdout", time=parsed, text=rest)
