"""Devices behind NAT: two agents in separate network namespaces that reach
the server but not each other, each with its own engine; the app proxy,
exec, logs and port-forward still work, all through the agents' outbound
connections."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.netns import Namespace, isolated_namespaces
from tests.support.podman import IMAGE, PodmanService, ensure_image
from tests.support.procs import ADMIN_TOKEN, free_port, wait_for

pytestmark = pytest.mark.podman

WS_ECHO = """
import asyncio, sys
from websockets.asyncio.server import serve
async def echo(ws):
    async for m in ws:
        await ws.send(m)
async def main():
    async with serve(echo, "127.0.0.1", int(sys.argv[1])):
        await asyncio.Future()
asyncio.run(main())
"""


@pytest.fixture
def behind_nat(
    tmp_path: Path, podman_engine: Any
) -> Iterator[tuple[list[Namespace], list[PodmanService]]]:
    ensure_image(tmp_path)
    with isolated_namespaces(2) as spaces:
        engines = [PodmanService(tmp_path, ns.name) for ns in spaces]
        for engine in engines:
            engine.start()
        try:
            yield spaces, engines
        finally:
            for engine in engines:
                engine.cleanup()
                engine.stop()


def test_everything_works_from_behind_nat(
    behind_nat: tuple[list[Namespace], list[PodmanService]], fleet: Fleet
) -> None:
    spaces, engines = behind_nat
    server = fleet.start_server(extra_args=["--host", "0.0.0.0"])
    key = fleet.key(labels={"nat": "yes"})
    agents = [
        fleet.start_agent(
            f"nat{i}",
            key=key,
            servers=[f"http://{ns.host_ip}:{server.port}"],
            runtime="docker",
            extra_args=["--allow-process"],
            env={"DOCKER_HOST": engines[i].url},
            netns=ns.name,
        )
        for i, ns in enumerate(spaces)
    ]
    ids = [a.wait_enrolled() for a in agents]
    # the devices reach the server, not each other
    assert (
        spaces[0].run("busybox", "ping", "-c1", "-W1", spaces[1].inner_ip, check=False).returncode
        != 0
    )
    assert (
        spaces[0].run("busybox", "ping", "-c1", "-W1", spaces[0].host_ip, check=False).returncode
        == 0
    )

    ws_port = free_port()
    compose = f"""
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "dd if=/dev/urandom of=/var/www/blob bs=1M count=5 2>/dev/null; echo web-up; exec httpd -f -p 8080 -h /var/www"]
    init: true
    expose: ["8080"]
  echo:
    x-edgefleet-runtime: process
    command: ["{sys.executable}", "-c", {json.dumps(WS_ECHO)}, "{ws_port}"]
    expose: ["{ws_port}"]
"""
    with server.client() as client:
        client.create_application("natapp", "1", compose=compose)
        job = client.create_job("natapp", selector={"nat": "yes"})["id"]

    def running() -> bool:
        with server.client() as client:
            return client.job(job)["state"] == "running"

    wait_for(running, 120, what="running behind NAT")
    from websockets.sync.client import connect

    with server.http() as http:
        for device in ids:
            page = http.get(f"/proxy/{job}/{device}/web/8080/index.html")
            assert page.status_code == 200 and page.text == "hello from busybox\n"
            blob = http.get(f"/proxy/{job}/{device}/web/8080/blob")
            assert len(blob.content) == 5 * 1024 * 1024
            ran = http.post(
                f"/api/v1/jobs/{job}/exec",
                json={"device": device, "service": "web", "command": ["wc", "-c", "/var/www/blob"]},
            ).json()
            assert ran["stdout"].split()[0] == str(5 * 1024 * 1024)
            on_device = http.post(
                f"/api/v1/devices/{device}/exec", json={"command": ["ip", "-4", "addr"]}
            ).json()
            assert any(ns.inner_ip in on_device["stdout"] for ns in spaces)
            logs = http.get(
                f"/api/v1/jobs/{job}/logs", params={"device": device, "service": "web"}
            ).text
            assert "web-up" in logs
            with connect(
                f"ws://127.0.0.1:{server.port}/proxy/{job}/{device}/echo/{ws_port}/",
                additional_headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ) as ws:
                ws.send("through the NAT")
                assert ws.recv(timeout=10) == "through the NAT"

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
            f"{job}/{ids[1]}/web",
            f"{local}:8080",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def fetched() -> bool:
            with httpx.Client(timeout=5) as http:
                return http.get(f"http://127.0.0.1:{local}/index.html").status_code == 200

        wait_for(fetched, 20, what="port-forward behind NAT")
    finally:
        forward.terminate()
        forward.wait(10)

    # cut one device's network: it goes offline, the other keeps working; restore: back online
    spaces[0].link(False)
    started = time.monotonic()

    def offline() -> bool:
        with server.client() as client:
            return not client.device(ids[0])["is_online"]

    wait_for(offline, 15, what="cut device offline")
    assert time.monotonic() - started < 6  # three 1 s heartbeats, plus flush slack
    with server.http() as http:
        assert http.get(f"/proxy/{job}/{ids[1]}/web/8080/index.html").status_code == 200
        assert http.get(f"/proxy/{job}/{ids[0]}/web/8080/index.html").status_code == 503
    spaces[0].link(True)

    def back() -> bool:
        with server.client() as client:
            return bool(client.device(ids[0])["is_online"])

    wait_for(back, 30, what="device back online")
    with server.http() as http:
        assert http.get(f"/proxy/{job}/{ids[0]}/web/8080/index.html").status_code == 200
