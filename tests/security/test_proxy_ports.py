"""The proxy and port-forward reach only what the role allows (issue 14).

A job's services declare ports (``ports:``, ``expose:``); through the proxy
and a job port-forward only those are reachable, for every role. Anything
else on the device (here: a listener on the device's loopback that no job
declares, standing in for the agent's neighbours, a database, an admin UI)
is a raw device port: forwarding to it needs the right to run commands on the
device (operator, owner), and a viewer is refused with a clear message, by
the API and by ``edgefleet port-forward`` before it listens.
"""

from __future__ import annotations

import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import Fleet
from tests.support.procs import (
    ServerProc,
    free_port,
    kill_process_workloads,
    listening,
    stop_all,
    wait_for,
)

pytestmark = pytest.mark.slow

PYTHON = "/usr/bin/python3"  # process services may run as another user (nobody)


@dataclass
class Ports:
    server: ServerProc
    job: str
    device: str
    declared: int  # ports: of service web
    exposed: int  # expose: of service web
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ports]:
    workdir = tmp_path_factory.mktemp("proxy-ports")
    fleet = Fleet(workdir, None)
    try:
        server = fleet.start_server()
        device = fleet.start_agent("pi", runtime="process").wait_enrolled()
        declared, exposed = free_port(), free_port()
        serve = "import http.server as h, sys; h.test(h.SimpleHTTPRequestHandler, port=int(sys.argv[1]), bind='127.0.0.1')"
        spec = {
            "services": {
                "web": {
                    "x-edgefleet-runtime": "process",
                    "command": [PYTHON, "-c", serve, str(declared)],
                    "ports": [str(declared)],
                    "expose": [str(exposed)],
                },
                "side": {
                    "x-edgefleet-runtime": "process",
                    "command": [PYTHON, "-c", serve, str(exposed)],
                },
            }
        }
        tokens: dict[str, str] = {}
        with server.client() as client:
            client.create_application("site", "1", spec=spec)
            job = client.create_job("site", devices=[device])["id"]
            for role in ("viewer", "operator"):
                client.create_user(role)
                client.add_member("default", role, role)
                tokens[role] = client.create_token(role, user=role)["token"]
        wait_for(lambda: listening(declared) and listening(exposed), 60, what="the app serving")
        yield Ports(server, job, device, declared, exposed, tokens)
        with server.client() as client:
            client.cancel_job(job)
        wait_for(lambda: not listening(declared), 30, what="the app stopped")
    finally:
        stop_all(fleet.procs)
        kill_process_workloads(workdir)


@pytest.fixture
def raw_port() -> Iterator[socket.socket]:
    """A listener on the device's loopback that no job declares."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    yield listener
    listener.close()


def untouched(listener: socket.socket) -> bool:
    """Nobody connected to it (checked without blocking)."""
    ready, _, _ = select.select([listener], [], [], 0.5)
    return not ready


def cli(server: ServerProc, token: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "edgefleet", "--server", server.url, "--token", token, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_proxy_reaches_declared_ports_only(ports: Ports, raw_port: socket.socket) -> None:
    raw = raw_port.getsockname()[1]
    for role in ("viewer", "operator"):
        with ports.server.http(ports.tokens[role]) as http:
            base = f"/proxy/{ports.job}/{ports.device}/web"
            assert http.get(f"{base}/{ports.declared}/").status_code == 200
            assert http.get(f"{base}/{ports.exposed}/").status_code == 200
            refused = http.get(f"{base}/{raw}/")
            assert refused.status_code == 404, refused.text
            body = refused.json()
            assert body["error"]["field"] == "port"
            detail = body["detail"]
            assert f"declares no port {raw}" in detail
            assert str(ports.declared) in detail and str(ports.exposed) in detail
    # the admin too: a raw port is not an app, whoever asks
    with ports.server.http() as http:
        assert http.get(f"/proxy/{ports.job}/{ports.device}/web/{raw}/").status_code == 404
    assert untouched(raw_port)


def test_job_port_forward_reaches_declared_ports_only(
    ports: Ports, raw_port: socket.socket
) -> None:
    raw = raw_port.getsockname()[1]
    base = f"ws://127.0.0.1:{ports.server.port}/api/v1/jobs/{ports.job}/forward/ws"
    headers = {"Authorization": f"Bearer {ports.tokens['viewer']}"}
    query = f"?device={ports.device}&service=web&port="
    with connect(base + query + str(ports.declared), additional_headers=headers) as ws:
        ws.send(b"GET / HTTP/1.0\r\n\r\n")
        assert ws.recv(timeout=10)[:12] == b"HTTP/1.0 200"
    with (
        connect(base + query + str(raw), additional_headers=headers) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.recv(timeout=10)
    rcvd = closed.value.rcvd
    assert rcvd is not None and rcvd.code == 4404
    assert f"declares no port {raw}" in rcvd.reason
    assert untouched(raw_port)


def test_raw_device_port_forward_needs_the_exec_right(
    ports: Ports, raw_port: socket.socket
) -> None:
    raw = raw_port.getsockname()[1]
    # a viewer: refused before anything listens, in plain words, no traceback
    local = free_port()
    viewer = cli(
        ports.server, ports.tokens["viewer"], "port-forward", ports.device, f"{local}:{raw}"
    )
    out, err = viewer.communicate(timeout=60)
    assert viewer.returncode == 1, (out, err)
    assert "your role 'viewer' may not run commands on devices" in err
    assert "Traceback" not in err
    assert not listening(local)
    # a viewer's job port-forward to an undeclared port: refused the same way
    job = cli(
        ports.server,
        ports.tokens["viewer"],
        "port-forward",
        f"{ports.job}/{ports.device}/web",
        f"{local}:{raw}",
    )
    out, err = job.communicate(timeout=60)
    assert job.returncode == 1 and f"declares no port {raw}" in err, (out, err)
    assert untouched(raw_port)
    # an operator: the raw port is theirs to reach
    operator = cli(
        ports.server,
        ports.tokens["operator"],
        "port-forward",
        ports.device,
        f"{local}:127.0.0.1:{raw}",
    )
    try:

        def connected() -> bool:
            with socket.create_connection(("127.0.0.1", local), timeout=5) as conn:
                conn.sendall(b"ping")
                accepted, _ = raw_port.accept()
                with accepted:
                    return accepted.recv(4) == b"ping"

        assert wait_for(connected, 30, what="the operator's port-forward")
    finally:
        operator.terminate()
        operator.communicate(timeout=10)

    def forwards() -> list[str]:
        with ports.server.client() as client:
            events = client.get("/events", kind="device.forward")["items"]
        return [e["actor"] for e in events]

    # the operator's forward is audited; the viewer's refusals opened nothing
    assert wait_for(forwards, 10, what="the forward's event") == ["operator"]
