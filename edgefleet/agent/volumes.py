"""Project volumes on the device (issue 21): the server's ``volume`` streams.

The server opens ``{"kind": "volume", "op": "usage"|"archive"|"remove",
"volume": "ef-proj-<project>-<name>"}``; the name is one the server derived
from a project the caller may act on, and this side refuses any other shape,
so a stream can never reach a job's own volume or one of the owner's.

- ``usage``: accept with ``{"exists", "size"}`` (bytes of the files in it).
- ``archive``: accept, then send the volume's files as a tar (members are
  stored as they are: symlinks as links, never followed), then close.
- ``remove``: accept with ``{"removed"}`` (an unused volume only: one a
  running workload mounts is kept, ``{"removed": false, "error"}``).

Only the ``docker`` runtime holds volumes; its volumes are read through their
mountpoint, which the agent shares with the engine on a device.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefleet.agent.runtimes.base import RuntimeSet
from edgefleet.spec.policy import PROJECT_VOLUME
from edgefleet.wire.mux import Stream, StreamError

if TYPE_CHECKING:
    from edgefleet.agent.engine import EngineClient

log = logging.getLogger(__name__)

CHUNK = 64 * 1024


def handler(runtimes: Callable[[], RuntimeSet | None]) -> Callable[[Stream], Awaitable[None]]:
    async def serve(stream: Stream) -> None:
        name = str(stream.header.get("volume", ""))
        op = str(stream.header.get("op", ""))
        if not PROJECT_VOLUME.fullmatch(name):
            await stream.refuse(f"{name!r} is not a project volume")
            return
        found_runtimes = runtimes()
        engine = found_runtimes.engine() if found_runtimes is not None else None
        if engine is None:
            await stream.refuse("this device has no container engine: it holds no volumes")
            return
        api = engine.engine_api()
        try:
            if op == "usage":
                path = await _mountpoint(api, name)
                size = await asyncio.to_thread(_size, path) if path else 0
                await stream.accept({"exists": path is not None, "size": size})
                await stream.close()
            elif op == "remove":
                await stream.accept(await _remove(api, name))
                await stream.close()
            elif op == "archive":
                path = await _mountpoint(api, name)
                if path is None:
                    await stream.refuse(f"volume {name} does not exist on this device")
                    return
                await stream.accept({})
                await _send_tar(stream, path)
                await stream.close()
            else:
                await stream.refuse(f"unknown volume operation {op!r}")
        except StreamError:
            log.info("volume stream for %s closed by the server", name)

    return serve


async def _mountpoint(api: EngineClient, name: str) -> Path | None:
    from edgefleet.agent.engine import NotFound

    try:
        found = await asyncio.to_thread(api.volumes.inspect, name)
    except NotFound:
        return None
    return Path(found["Mountpoint"])


async def _remove(api: EngineClient, name: str) -> dict[str, Any]:
    from edgefleet.agent.engine import APIError, NotFound

    try:
        await asyncio.to_thread(api.volumes.remove, name)
    except NotFound:
        return {"removed": False, "exists": False}
    except APIError as exc:  # in use by a container
        return {"removed": False, "exists": True, "error": str(exc.explanation or exc)[:300]}
    return {"removed": True, "exists": False}


def _size(root: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(root):
        for file in files:
            try:
                total += os.lstat(os.path.join(folder, file)).st_size
            except OSError:
                continue  # removed while walking
    return total


class _Pipe:
    """A file object tarfile writes to, handing full chunks to the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None]):
        self.loop, self.queue, self.buffer = loop, queue, bytearray()
        self.aborted = False

    def write(self, data: bytes) -> int:
        if self.aborted:  # the server went away: stop reading the volume
            raise OSError("the volume download was closed")
        self.buffer += data
        while len(self.buffer) >= CHUNK:
            self._put(bytes(self.buffer[:CHUNK]))
            del self.buffer[:CHUNK]
        return len(data)

    def flush_all(self) -> None:
        if self.buffer and not self.aborted:
            self._put(bytes(self.buffer))
        self._put(None)

    def _put(self, item: bytes | None) -> None:
        asyncio.run_coroutine_threadsafe(self.queue.put(item), self.loop).result()


async def _send_tar(stream: Stream, root: Path) -> None:
    import tarfile  # with the first copy, not in every idle agent

    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)
    pipe = _Pipe(asyncio.get_running_loop(), queue)

    def write() -> None:
        try:
            with tarfile.open(fileobj=pipe, mode="w|") as tar:  # type: ignore[call-overload]
                tar.add(root, arcname=".", recursive=True)  # symlinks stay links
        finally:
            pipe.flush_all()

    writer = asyncio.create_task(asyncio.to_thread(write))
    try:
        while (chunk := await queue.get()) is not None:
            await stream.send(chunk)
    except StreamError:
        pipe.aborted = True
        while await queue.get() is not None:  # let the writer thread finish
            pass
        await asyncio.gather(writer, return_exceptions=True)
        raise
    await writer
