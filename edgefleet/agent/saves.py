"""An instance's container saved as an image (issue 21): the server's ``save`` streams.

The server opens ``{"kind": "save", "job", "service", "repository", "tag",
"auth"}`` (:class:`~edgefleet.wire.saves.SaveRequest`). This side commits the
container of that service of that job (only a container this agent manages
for this device: labels ``io.edgefleet.job``/``service``/``device``), tags it
``repository:tag`` and pushes it with the registry login the server sent,
sending a :class:`~edgefleet.wire.saves.SaveEvent` per layer update and a last
one with the pushed digest or the engine's error.

Like a pull, it runs on the device's own engine (only the ``docker`` runtime,
which Podman's compatible API serves too), so the registry is reached from the
device, with the device's network and trust settings.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.runtimes.base import RuntimeSet
from edgefleet.wire.mux import Stream, StreamError
from edgefleet.wire.saves import SaveEvent, SaveRequest

if TYPE_CHECKING:
    from edgefleet.agent.engine import EngineClient

log = logging.getLogger(__name__)

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def handler(runtimes: Callable[[], RuntimeSet | None]) -> Callable[[Stream], Awaitable[None]]:
    async def serve(stream: Stream) -> None:
        try:
            request = SaveRequest.model_validate(stream.header)
        except ValidationError as exc:
            await stream.refuse(f"not a save request: {exc.errors()[0]['msg']}")
            return
        found_runtimes = runtimes()
        runtime = found_runtimes.engine() if found_runtimes is not None else None
        if runtime is None:
            await stream.refuse("this device has no container engine: nothing to save")
            return
        try:
            workloads = await runtime.workloads(request.job)
        except RuntimeFailure as exc:
            await stream.refuse(str(exc)[:500])
            return
        found = [w for w in workloads if w.service == request.service]
        if not found:
            await stream.refuse(
                f"no container of service {request.service} of job {request.job} on this device"
            )
            return
        container = found[0].id
        await stream.accept({"container": container})
        loop = asyncio.get_running_loop()

        def emit(event: SaveEvent) -> None:  # from the engine's thread
            data = event.model_dump_json(exclude_none=True).encode()
            asyncio.run_coroutine_threadsafe(stream.send(data), loop).result()

        try:
            try:
                digest = await asyncio.to_thread(
                    commit_and_push,
                    runtime.engine_api(),
                    container,
                    request,
                    emit,
                    await runtime.is_podman(),
                )
                last = SaveEvent(status="pushed", done=True, digest=digest)
            except SaveFailed as exc:
                last = SaveEvent(status="failed", done=True, error=str(exc)[:1000])
            await stream.send(last.model_dump_json(exclude_none=True).encode())
            await stream.close()
        except StreamError:
            log.info("save stream for job %s closed by the server", request.job)

    return serve


class SaveFailed(Exception):
    """The engine refused the commit or the push; the message is its answer."""


def commit_and_push(
    api: EngineClient,
    container: str,
    request: SaveRequest,
    emit: Callable[[SaveEvent], None],
    podman: bool = False,
) -> str:
    """Commit, tag, push; the digest the registry stored. Blocking (a worker thread).

    Docker Engine reports each layer's bytes while it pushes. Podman's compatible
    API (4.x) reports only the start and the digest, so for it the image's layers
    are announced before the push and marked pushed with the digest: the progress
    is then in layers, all at the end."""
    from edgefleet.agent.engine import EngineError

    emit(SaveEvent(status=f"committing {container[:12]}"))
    try:
        api.containers.commit(
            container, request.repository, request.tag, "saved by edgefleet instances save"
        )
    except (EngineError, OSError) as exc:
        raise SaveFailed(f"commit failed: {_said(exc)}") from exc
    layers = _layers(api, f"{request.repository}:{request.tag}") if podman else []
    for layer in layers:
        emit(SaveEvent(status="Waiting", layer=layer))
    emit(SaveEvent(status=f"pushing {request.repository}:{request.tag}"))
    auth = request.auth.model_dump() if request.auth is not None else None
    try:
        events = api.images.push(request.repository, request.tag, auth=auth)
        digest = _follow(events, emit)
    except (EngineError, OSError) as exc:
        raise SaveFailed(f"push failed: {_said(exc)}") from exc
    if digest is None:
        try:
            info = api.images.inspect(f"{request.repository}:{request.tag}")
        except (EngineError, OSError) as exc:
            raise SaveFailed(f"pushed, but the image cannot be inspected: {exc}") from exc
        digest = _from_repo_digests(info.get("RepoDigests") or [], request.repository)
    if digest is None:
        raise SaveFailed("the engine pushed the image but reported no digest")
    for layer in layers:
        emit(SaveEvent(status="Pushed", layer=layer))
    return digest


def _said(exc: Exception) -> str:
    """The engine's own sentence for an API error, else the error."""
    return str(getattr(exc, "explanation", None) or exc)


def _layers(api: EngineClient, image: str) -> list[str]:
    """Short ids of the image's layers (``RootFS.Layers``), oldest first."""
    from edgefleet.agent.engine import EngineError

    try:
        info = api.images.inspect(image)
    except (EngineError, OSError) as exc:
        raise SaveFailed(f"the committed image cannot be inspected: {exc}") from exc
    found = (info.get("RootFS") or {}).get("Layers") or []
    return [str(layer).removeprefix("sha256:")[:12] for layer in found]


def _follow(events: Iterator[dict[str, Any]], emit: Callable[[SaveEvent], None]) -> str | None:
    """Relay the push's progress; the digest if the engine named one; raise on its error."""
    digest: str | None = None
    for event in events:
        if event.get("error") or event.get("errorDetail"):
            detail = event.get("errorDetail") or {}
            raise SaveFailed(f"push failed: {event.get('error') or detail.get('message')}")
        aux = event.get("aux") or {}
        status = str(event.get("status") or event.get("stream") or "").strip()
        found = _DIGEST.search(str(aux.get("Digest") or "")) or _DIGEST.search(status)
        if found and "digest" in (status.lower() + str(aux).lower()):
            digest = found.group(0)
        progress = event.get("progressDetail") or {}
        if status or progress:
            emit(
                SaveEvent(
                    status=status[:300],
                    layer=str(event["id"])[:128] if event.get("id") else None,
                    current=_int(progress.get("current")),
                    total=_int(progress.get("total")),
                )
            )
    return digest


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def _from_repo_digests(found: list[str], repository: str) -> str | None:
    for entry in found:
        name, _, digest = entry.partition("@")
        if name == repository and _DIGEST.fullmatch(digest):
            return digest
    return None
