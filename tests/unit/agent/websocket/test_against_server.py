"""The agent's WebSocket client against the real server (uvicorn): an agent
process comes online through it, and a client held by hand gets the welcome,
the revocation close (4401) and the admission close (4503, retry-after)."""

from __future__ import annotations

import asyncio
import json

import pytest

from edgefleet.agent.websocket import connect
from edgefleet.wire.link import TransportClosed
from edgefleet.wire.messages import DeviceFacts, Hello, Revoked, Welcome, decode
from tests.conftest import Fleet
from tests.support.procs import wait_for
from tests.support.tls import TLSServerProc


def _url(fleet: Fleet) -> str:
    assert fleet.server is not None
    return fleet.server.url.replace("http://", "ws://") + "/api/v1/agent/connect"


async def _closed(url: str, credential: str) -> tuple[list[str | bytes], int, str]:
    """Messages received, then the close code and reason."""
    received: list[str | bytes] = []
    async with connect(url, headers={"Authorization": f"Bearer {credential}"}) as ws:
        with pytest.raises(TransportClosed) as closed:
            while True:
                received.append(await asyncio.wait_for(ws.receive(), 10))
    return received, closed.value.code, closed.value.reason


async def test_an_agent_comes_online_and_a_device_gets_its_welcome(fleet: Fleet) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("a")
    device = agent.wait_enrolled()
    with server.http() as http:
        wait_for(lambda: http.get(f"/api/v1/devices/{device}").json()["is_online"], 30)
    agent.stop()
    credential = json.loads((agent.state_dir / "device.json").read_text())["credential"]
    headers = {"Authorization": f"Bearer {credential}"}
    async with connect(_url(fleet), headers=headers, max_size=8 << 20) as ws:
        await ws.send_text(Hello(facts=DeviceFacts()).model_dump_json())
        while not isinstance(message := decode(await asyncio.wait_for(ws.receive(), 10)), Welcome):
            pass
        assert message.device_id == device
        with server.http() as http:
            wait_for(lambda: http.get(f"/api/v1/devices/{device}").json()["is_online"], 30)
    assert ws.done.is_set()  # closed (1000) on leaving the block


async def test_an_unknown_credential_is_told_and_closed_with_4401(fleet: Fleet) -> None:
    fleet.start_server()
    received, code, reason = await _closed(_url(fleet), "efd_nobody")
    assert isinstance(decode(received[0]), Revoked)
    assert (code, reason) == (4401, "credential revoked")


async def test_over_the_admission_rate_the_close_says_when_to_come_back(fleet: Fleet) -> None:
    fleet.start_server(extra_args=["--agent-connects-per-second", "1"])
    closes = [(await _closed(_url(fleet), "efd_nobody"))[1:] for _ in range(3)]
    assert closes[0][0] == 4401  # admitted (the bucket holds one)
    waits = [float(reason.removeprefix("retry-after=")) for code, reason in closes if code == 4503]
    assert waits and all(w >= 1 for w in waits), closes


def test_an_agent_comes_online_over_wss(fleet: Fleet) -> None:
    """An https server: TLS through the agent's own client (asyncio keeps ssl)."""
    server = TLSServerProc(fleet.workdir, heartbeat=1.0)
    fleet.procs.append(server)
    fleet.server = server
    server.start()
    with server.http() as http:
        key = http.post("/api/v1/provisioning-keys", json={}).json()["key"]
        agent = fleet.start_agent(
            "tls", key=key, servers=[server.url], extra_args=["--ca-file", str(server.cert)]
        )
        device = agent.wait_enrolled()
        wait_for(lambda: http.get(f"/api/v1/devices/{device}").json()["is_online"], 30)
    assert "cannot reach" not in agent.log()
