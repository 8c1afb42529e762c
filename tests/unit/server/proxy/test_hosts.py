"""The host router's reading of the Host header, and what it keeps while a
request it passed on is in progress (issue 16: an agent's WebSocket lasts
months, and the router's frame with it)."""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Scope, Send

from edgefleet.server.proxy.hosts import HostRouter, app_route


def test_the_app_is_named_by_the_last_host_header_whatever_its_case() -> None:
    app_host = b"j1-d1-web-80.apps.example"
    scope = {"headers": [(b"HOST", b"first.example"), (b"x-other", b"y"), (b"host", app_host)]}
    route = app_route(scope, "apps.example")
    assert route is not None and (route.job, route.device, route.service, route.port) == (
        "j1",
        "d1",
        "web",
        80,
    )
    last_is_ours = {"headers": [(b"Host", app_host), (b"host", b"fleet.example")]}
    assert app_route(last_is_ours, "apps.example") is None
    assert app_route({"headers": []}, "apps.example") is None
    assert app_route({}, "apps.example") is None


def test_a_request_passed_on_keeps_no_copy_of_its_headers_in_the_router() -> None:
    seen: list[Scope] = []

    async def main() -> None:
        entered = asyncio.Event()
        leave = asyncio.Event()

        async def inner(scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(scope)
            entered.set()
            await leave.wait()

        async def nothing() -> dict[str, object]:
            return {}

        async def ignore(message: object) -> None:
            return None

        headers = [(b"host", b"edgefleet.example:8080")] + [
            (f"x-h{i}".encode(), b"v" * 50) for i in range(20)
        ]
        scope = {"type": "websocket", "path": "/api/v1/agent/connect", "headers": headers}
        router = HostRouter(inner, domain="apps.example")
        task = asyncio.create_task(router(scope, nothing, ignore))  # type: ignore[arg-type]
        await entered.wait()
        frame = task.get_coro().cr_frame  # type: ignore[union-attr]
        held = {name: value for name, value in frame.f_locals.items() if name != "scope"}
        assert not [v for v in held.values() if isinstance(v, dict)], held
        leave.set()
        await task

    asyncio.run(main())
    assert seen and seen[0]["path"] == "/api/v1/agent/connect"  # not an app host: passed on
