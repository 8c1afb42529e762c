"""The live event stream (``GET /events/stream``): a reader too slow to keep up
loses events, but is told how many, and the server logs it once."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from edgefleet.server.auth.caller import Caller
from edgefleet.server.bus.base import create_bus
from edgefleet.server.bus.envelopes import EventNotice
from edgefleet.server.events.routes import stream_events
from edgefleet.server.limits import Limits
from edgefleet.server.settings import ServerSettings


class Request:
    async def is_disconnected(self) -> bool:
        return False


async def test_a_slow_reader_is_told_how_many_events_it_missed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus = create_bus("memory", {})
    await bus.start()
    ctx: Any = SimpleNamespace(bus=bus, limits=Limits(ServerSettings(data_dir=tmp_path)))
    admin = Caller(user_pk=1, user_id="u_admin", name="admin", is_admin=True)
    response = await stream_events(Request(), admin, ctx)  # type: ignore[arg-type]
    body = response.body_iterator
    assert await anext(body) == b": connected\n\n"  # subscribed; nothing read yet
    notice = EventNotice(time="2026-01-01T00:00:00Z", kind="device.connected", project_pk=1)
    with caplog.at_level(logging.WARNING, "edgefleet.server.events.routes"):
        for _ in range(1005):  # the stream holds 1,000
            await bus.publish("ef.events.1", notice.encode())
        await asyncio.sleep(0.2)  # the memory bus hands them over in its own task
    chunks = [await anext(body) for _ in range(1001)]
    assert chunks[0] == b": 5 events dropped (reading too slowly)\n\n"  # said first
    assert all(c.startswith(b"event: device.connected\ndata: {") for c in chunks[1:])
    assert [r.message for r in caplog.records] == [
        "event stream of user u_admin too slow: dropping events"
    ]
    await body.aclose()  # type: ignore[attr-defined]
    await bus.close()
