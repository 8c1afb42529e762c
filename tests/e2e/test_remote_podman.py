"""Reaching devices: exec (plain, TTY, timeout), logs follow, the app proxy
(path and host based, large download, WebSocket) and port-forward, against
real containers on Podman."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.podman import IMAGE, containers, podman
from tests.support.procs import ADMIN_TOKEN, free_port, wait_for

pytestmark = pytest.mark.podman

WS_ECHO = """
import asyncio, sys
from websockets.asyncio.server import serve
async def echo(ws):
    async for message in ws:
        await ws.send(message)
async def main():
    async with serve(echo, "127.0.0.1", int(sys.argv[1])):
        await asyncio.Future()
asyncio.run(main())
"""


def compose(ws_port: int) -> str:
    return f"""
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "dd if=/dev/urandom of=/var/www/big.bin bs=1M count=50 2>/dev/null; echo ready; exec httpd -f -v -p 8080 -h /var/www"]
    ports: ["8080"]
    init: true
  ticker:
    image: {IMAGE}
    command: ["sh", "-c", "i=0; while true; do echo tick $$i; i=$$((i+1)); sleep 0.5; done"]
    init: true
  echo:
    x-edgefleet-runtime: process
    command: ["{sys.executable}", "-c", {json.dumps(WS_ECHO)}, "{ws_port}"]
    expose: ["{ws_port}"]
"""


def running(server: Any, job_id: str) -> bool:
    with server.client() as client:
        job = client.job(job_id)
    return job["state"] == "running"


@pytest.fixture
def deployed(engine: Any, fleet: Fleet) -> dict[str, Any]:
    server = fleet.start_server(extra_args=["--apps-domain", "apps.localhost"])
    agent = fleet.start_agent(
        "pi", runtime="docker", extra_args=["--allow-process"], env={"DOCKER_HOST": engine.url}
    )
    device = agent.wait_enrolled()
    ws_port = free_port()
    with server.client() as client:
        client.create_application("tools", "1", compose=compose(ws_port))
        job = client.create_job("tools", devices=[device])
    wait_for(lambda: running(server, job["id"]), 120, what="job running")

    def serving() -> bool:
        with server.http() as http:
            return http.get(f"/proxy/{job['id']}/{device}/web/8080/index.html").status_code == 200

    # running means the container runs; httpd starts after writing its 50 MB file
    wait_for(serving, 60, what="web service answering")

    def applied() -> bool:
        # A first deploy reports running while the agent still watches it through
        # its settle window; a test that restarts a container inside that window
        # fails the deploy (exit 143 right after starting) and has it rolled back.
        with server.http() as http:
            facts = http.get(f"/api/v1/devices/{device}").json()
        return 0 < facts["desired_generation"] <= facts["applied_generation"]

    wait_for(applied, 60, what="the deploy finished on the device")
    return {
        "server": server,
        "agent": agent,
        "device": device,
        "job": job["id"],
        "ws_port": ws_port,
    }


def cli(
    server_url: str, *args: str, token: str = ADMIN_TOKEN, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgefleet", "--server", server_url, "--token", token, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_proxy_http_download_websocket_and_access(deployed: dict[str, Any]) -> None:
    server, job, device = deployed["server"], deployed["job"], deployed["device"]
    base = f"/proxy/{job}/{device}/web/8080"
    with server.http() as http:
        page = http.get(f"{base}/index.html")
        assert page.status_code == 200 and page.text == "hello from busybox\n"
        # no trailing slash: redirected so relative links work
        assert http.get(base, follow_redirects=False).status_code == 307
        # a 50 MB download, streamed, byte-identical
        digest = hashlib.sha256()
        size = 0
        with http.stream("GET", f"{base}/big.bin") as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                digest.update(chunk)
                size += len(chunk)
        web = next(c for c in containers(job) if c["Labels"]["io.edgefleet.service"] == "web")
        expected = podman("exec", str(web["Id"]), "sha256sum", "/var/www/big.bin").stdout.split()[0]
        assert size == 50 * 1024 * 1024
        assert digest.hexdigest() == expected
        missing = http.get(f"{base}/nope.html")
        assert missing.status_code == 404
        undeclared = http.get(f"/proxy/{job}/{device}/web/9999/")
        assert undeclared.status_code == 404 and "declares no port 9999" in undeclared.text
        unknown = http.get(f"/proxy/{job}/{device}/nosuch/8080/")
        assert unknown.status_code == 404
    # host-based routing
    port = server.port
    with httpx.Client(timeout=30) as http:
        hosted = http.get(
            f"http://127.0.0.1:{port}/index.html",
            headers={
                "Host": f"{job}-{device}-web-8080.apps.localhost:{port}",
                "Authorization": f"Bearer {ADMIN_TOKEN}",
            },
        )
        assert hosted.status_code == 200 and hosted.text == "hello from busybox\n"
        # no credentials: scripts get 401, browsers are sent to sign in
        assert http.get(f"{server.url}{base}/index.html").status_code == 401
        browser = http.get(
            f"http://127.0.0.1:{port}/",
            headers={
                "Host": f"{job}-{device}-web-8080.apps.localhost:{port}",
                "Accept": "text/html",
            },
        )
        assert browser.status_code == 302 and "/proxy-auth" in browser.headers["location"]
    # a member of another project gets 404
    with server.client() as admin:
        admin.create_project("other")
        admin.create_user("eve")
        admin.add_member("other", "eve", "owner")
        eve = admin.create_token("eve", user="eve")["token"]
    with server.http(eve) as http:
        assert http.get(f"{base}/index.html").status_code == 404
    # a WebSocket echo app through the proxy
    from websockets.sync.client import connect

    ws_port = deployed["ws_port"]
    url = f"ws://127.0.0.1:{port}/proxy/{job}/{device}/echo/{ws_port}/"
    with connect(url, additional_headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        ws.send(b"\x00\x01binary")
        assert ws.recv(timeout=10) == b"\x00\x01binary"


def test_proxy_follows_a_restarted_container(deployed: dict[str, Any]) -> None:
    """The agent remembers the service's address (agent/addresses.py): after the
    engine restarts the container (it may get another address), requests reach
    the running container again, not a stale address."""
    server, job, device = deployed["server"], deployed["job"], deployed["device"]
    base = f"/proxy/{job}/{device}/web/8080"
    web = next(c for c in containers(job) if c["Labels"]["io.edgefleet.service"] == "web")
    with server.http() as http:
        assert http.get(f"{base}/index.html").status_code == 200  # remembered from here on
        assert http.get(f"{base}/marker.html").status_code == 404
        podman("restart", "--time", "1", str(web["Id"]))
        podman("exec", str(web["Id"]), "sh", "-c", "echo restarted > /var/www/marker.html")

        def reached() -> bool:
            answer = http.get(f"{base}/marker.html")
            return answer.status_code == 200 and answer.text == "restarted\n"

        wait_for(reached, 60, what="the restarted container through the proxy")


def test_exec_tty_timeout_and_audit(deployed: dict[str, Any]) -> None:
    server, job, device = deployed["server"], deployed["job"], deployed["device"]
    with server.http() as http:
        result = http.post(
            f"/api/v1/devices/{device}/exec",
            json={"command": ["sh", "-c", "echo out; echo err >&2; exit 3"]},
        ).json()
        assert result == {
            "exit_code": 3,
            "stdout": "out\n",
            "stderr": "err\n",
            "timed_out": False,
            "truncated": False,
        }
        started = time.monotonic()
        slow = http.post(
            f"/api/v1/devices/{device}/exec", json={"command": ["sleep", "30"], "timeout": 1}
        ).json()
        assert slow["timed_out"] and slow["exit_code"] == 124
        assert time.monotonic() - started < 10
        inside = http.post(
            f"/api/v1/jobs/{job}/exec",
            json={"device": device, "service": "web", "command": ["cat", "/var/www/index.html"]},
        ).json()
        assert inside["exit_code"] == 0 and inside["stdout"] == "hello from busybox\n"
        missing = http.post(
            f"/api/v1/devices/{device}/exec", json={"command": ["no-such-binary"]}
        ).json()
        assert missing["exit_code"] == 127
        assert http.post(f"/api/v1/devices/{device}/exec", json={"command": []}).status_code == 422
        audit = http.get("/api/v1/audit/exec").json()["items"]
        assert [a["exit_code"] for a in audit][:2] == [3, 124]
        assert audit[0]["user"] == "admin" and audit[0]["command"][0] == "sh"
    # roles: a viewer may not exec; a developer may exec in workloads but not on the device
    with server.client() as admin:
        admin.create_user("dev")
        admin.add_member("default", "dev", "developer")
        dev = admin.create_token("dev", user="dev")["token"]
    with server.http(dev) as http:
        assert (
            http.post(f"/api/v1/devices/{device}/exec", json={"command": ["id"]}).status_code == 403
        )
        ok = http.post(
            f"/api/v1/jobs/{job}/exec",
            json={"device": device, "service": "web", "command": ["true"]},
        )
        assert ok.status_code == 200 and ok.json()["exit_code"] == 0
    # the CLI, non-interactive: output and exit code pass through
    plain = cli(server.url, "exec", device, "--", "sh", "-c", "echo via-cli; exit 5")
    assert plain.returncode == 5 and plain.stdout == "via-cli\n"
    # the CLI with a TTY, driven through a pseudo-terminal: output, Ctrl-C, exit code
    import pty

    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgefleet",
            "--server",
            server.url,
            "--token",
            ADMIN_TOKEN,
            "exec",
            "-it",
            job,
            "--device",
            device,
            "--service",
            "web",
            "--",
            "sh",
        ],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
    )
    os.close(secondary)
    seen = b""
    answered = 0

    def read_until(marker: bytes, timeout: float = 20) -> None:
        """Read the terminal until ``marker``, answering the shell's cursor
        position queries as a real terminal would."""
        nonlocal seen, answered
        import select

        deadline = time.monotonic() + timeout
        while marker not in seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {marker!r} in {seen[-500:]!r}")
            ready, _, _ = select.select([primary], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(primary, 4096)
                except OSError:
                    break
            while seen.count(b"\x1b[6n") > answered:
                answered += 1
                os.write(primary, b"\x1b[24;1R")

    read_until(b"# ")
    os.write(primary, b"echo hello-$((40+2))\n")
    read_until(b"hello-42")
    os.write(primary, b"sleep 30\n")
    time.sleep(1)
    os.write(primary, b"\x03")  # Ctrl-C interrupts the sleep, not the session
    os.write(primary, b"echo after-$((1+1))\n")
    read_until(b"after-2", timeout=10)
    os.write(primary, b"exit 7\n")
    code = process.wait(20)
    with __import__("contextlib").suppress(OSError):
        seen += os.read(primary, 65536)
    assert code == 7, seen[-3000:].decode(errors="replace")
    os.close(primary)


def test_logs_follow_and_agent_logs(deployed: dict[str, Any]) -> None:
    server, job, device = deployed["server"], deployed["job"], deployed["device"]
    with server.http() as http:
        # "running" is reported as soon as the container runs; its own output
        # ("ready", after writing a 50 MB file) may come a moment later.
        wait_for(
            lambda: (
                "pi/web | ready"
                in http.get(f"/api/v1/jobs/{job}/logs", params={"service": "web"}).text
            ),
            20,
            what="the web service's first line",
        )

        def ticker_tail() -> list[str]:
            params = {"service": "ticker", "tail": 2, "format": "jsonl"}
            return http.get(f"/api/v1/jobs/{job}/logs", params=params).text.splitlines()

        wait_for(lambda: len(ticker_tail()) >= 2, 20, what="two ticks")
        lines = ticker_tail()
        assert len(lines) == 2 and json.loads(lines[0])["service"] == "ticker"
        assert http.get(f"/api/v1/jobs/{job}/logs", params={"service": "nope"}).status_code == 422
        agent_log = http.get(f"/api/v1/devices/{device}/logs", params={"tail": 50}).text
        assert "connected to" in agent_log
    # follow: a line written now shows up within a second
    web = next(c for c in containers(job) if c["Labels"]["io.edgefleet.service"] == "web")
    with (
        httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=httpx.Timeout(10, read=15),
        ) as http,
        http.stream(
            "GET",
            f"/api/v1/jobs/{job}/logs",
            params={"service": "web", "follow": "true", "tail": 0},
        ) as response,
    ):
        assert response.status_code == 200
        lines_iter = response.iter_lines()
        time.sleep(0.5)
        marker = f"marker-{time.time()}"
        written = time.monotonic()
        podman("exec", str(web["Id"]), "sh", "-c", f"echo {marker} > /proc/1/fd/1")
        for line in lines_iter:
            if marker in line:
                break
        latency = time.monotonic() - written
    assert latency < 1.5, latency
    # and the CLI prints prefixed lines
    result = cli(server.url, "logs", job, "-s", "ticker", "--tail", "3")
    assert result.returncode == 0 and result.stdout.count("pi/ticker | tick") == 3


def test_port_forward_and_device_actions(deployed: dict[str, Any]) -> None:
    server, job, device = deployed["server"], deployed["job"], deployed["device"]
    local = free_port()
    forward = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgefleet",
            "--server",
            server.url,
            "--token",
            ADMIN_TOKEN,
            "port-forward",
            f"{job}/{device}/web",
            f"{local}:8080",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def fetched() -> bool:
            with httpx.Client(timeout=5) as http:
                return (
                    http.get(f"http://127.0.0.1:{local}/index.html").text == "hello from busybox\n"
                )

        assert wait_for(fetched, 20, what="port-forward")
    finally:
        forward.terminate()
        forward.wait(10)
        assert forward.stderr is not None
        forward.stderr.close()
    # operators can forward to a port on the device itself
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    probe.listen(1)
    device_port = probe.getsockname()[1]
    local2 = free_port()
    forward = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgefleet",
            "--server",
            server.url,
            "--token",
            ADMIN_TOKEN,
            "port-forward",
            device,
            f"{local2}:127.0.0.1:{device_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def connected() -> bool:
            with socket.create_connection(("127.0.0.1", local2), timeout=5) as client:
                client.sendall(b"ping")
                conn, _ = probe.accept()
                with conn:
                    return conn.recv(4) == b"ping"

        assert wait_for(connected, 20, what="device port-forward")
    finally:
        forward.terminate()
        forward.wait(10)
        probe.close()
    with server.http() as http:
        ident = http.post(f"/api/v1/devices/{device}/actions/identify", json={"message": "find-me"})
        assert ident.status_code == 200
        assert http.post(f"/api/v1/devices/{device}/actions/reboot", json={}).status_code == 422
        assert "find-me" in http.get(f"/api/v1/devices/{device}/logs").text


def test_offline_device_errors_are_fast(deployed: dict[str, Any]) -> None:
    server, job, device, agent = (
        deployed["server"],
        deployed["job"],
        deployed["device"],
        deployed["agent"],
    )
    agent.kill()

    def offline() -> bool:
        with server.client() as client:
            return not client.device(device)["is_online"]

    wait_for(offline, 10, what="offline")
    with server.http() as http:
        started = time.monotonic()
        proxied = http.get(f"/proxy/{job}/{device}/web/8080/")
        assert proxied.status_code == 503 and "offline" in proxied.json()["detail"]
        executed = http.post(f"/api/v1/devices/{device}/exec", json={"command": ["true"]})
        assert executed.status_code == 503
        assert time.monotonic() - started < 5
