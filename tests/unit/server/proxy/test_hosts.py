"""The host router's reading of the Host header, and what it keeps while a
request it passed on is in progress (issue 16: an agent's WebSocket lasts
months, and the router's frame with it)."""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Scope, Send

from edgefleet.server.proxy.hosts import HostRouter, _host


def test_host_is_the_last_host_header_whatever_its_case() -> None:
    scope = {"headers": [(b"HOST", b"first.example"), (b"x-other", b"y"), (b"host", b"b.ex")]}
    assert _host(scope) == "b.ex"
    assert _host({"headers": []}) == ""
    assert _host({}) == ""


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
