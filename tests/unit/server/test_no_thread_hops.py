"""Every API endpoint and dependency is a coroutine (issue 16: API latency under load).

FastAPI runs a plain ``def`` endpoint or dependency on its worker-thread pool,
so one such function in a request's dependency tree costs every request a
thread hop (and a queue behind 40 threads when 10,000 agents keep the server
busy). None of ours does blocking I/O; this keeps it that way."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from pathlib import Path

from fastapi import Depends
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute, APIWebSocketRoute

from edgefleet.server.app import create_app
from edgefleet.server.settings import ServerSettings


def _sync_calls(dependant: Dependant, path: str) -> set[str]:
    found: set[str] = set()
    call = dependant.call
    if call is not None and not (
        inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)
    ):
        found.add(f"{path}: {getattr(call, '__qualname__', call)}")
    for sub in dependant.dependencies:
        found |= _sync_calls(sub, path)
    return found


def _endpoints(routes: Iterable[object]) -> list[APIRoute | APIWebSocketRoute]:
    """The app's routes, through included routers (FastAPI 0.165 keeps each
    ``include_router`` as a wrapper holding the ``original_router``)."""
    found: list[APIRoute | APIWebSocketRoute] = []
    for route in routes:
        if isinstance(route, APIRoute | APIWebSocketRoute):
            found.append(route)
            continue
        inner = getattr(route, "original_router", None) or route
        if inner is not route or hasattr(inner, "routes"):
            found += _endpoints(getattr(inner, "routes", ()))
    return found


def test_no_endpoint_or_dependency_runs_on_the_thread_pool(tmp_path: Path) -> None:
    app = create_app(ServerSettings(data_dir=tmp_path))
    routes = _endpoints(app.routes)
    assert len(routes) > 100  # the whole API, portal and proxy were walked
    sync: set[str] = set()
    for route in routes:
        sync |= _sync_calls(route.dependant, route.path)
    assert sorted(sync) == []


def test_the_walk_finds_a_sync_dependency() -> None:
    def plain() -> int:
        return 1

    async def endpoint(value: int = 0) -> int:
        return value

    async def uses(value: int = Depends(plain)) -> int:
        return value

    assert _sync_calls(get_dependant(path="/x", call=endpoint), "/x") == set()
    assert _sync_calls(get_dependant(path="/x", call=uses), "/x") == {"/x: " + plain.__qualname__}
