"""What a fleet refuses, and what a device's owner decides.

- Keys a device can never honour are answered at upload with a 422 that
  names the key, its line and a way out; nothing is stored.
- Keys that need the owner's permission (privileged, host network and pid,
  host paths, published ports, powerful capabilities, host devices) are
  accepted with a warning, and each device decides: one whose policy does
  not allow them shows ``cannot run here: ...`` at once; one that allows
  them runs the service, visibly so in ``podman inspect``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.podman import IMAGE, containers, podman
from tests.support.procs import ADMIN_TOKEN, free_port, wait_for

REFUSED: dict[str, tuple[str, str]] = {
    # name: (service snippet, key path the 422 names)
    "build": ("build: .", "services.s.build"),
    "env_file": ("env_file: .env", "services.s.env_file"),
    # Undeclared: a project secret or config must be declared at the top level.
    "secrets": ("secrets: [db_password]", "services.s.secrets[0]"),
    "configs": ("configs: [nginx_conf]", "services.s.configs[0]"),
    "extends-file": ("extends: {file: common.yml, service: base}", "services.s.extends.file"),
    "volumes_from": ("volumes_from: [other]", "services.s.volumes_from"),
    "ipc": ("ipc: host", "services.s.ipc"),
    "userns_mode": ("userns_mode: host", "services.s.userns_mode"),
    "runtime": ("runtime: nvidia", "services.s.runtime"),
    "gpus": ("gpus: all", "services.s.gpus"),
    "use_api_socket": ("use_api_socket: true", "services.s.use_api_socket"),
    "external_links": ("external_links: [redis]", "services.s.external_links"),
    "network_mode-service": ("network_mode: 'service:db'", "services.s.network_mode"),
    "pull_policy-build": ("pull_policy: build", "services.s.pull_policy"),
    "sysctl-global": ("sysctls: {vm.swappiness: '10'}", "services.s.sysctls.vm.swappiness"),
    "device-reservation": (
        "deploy: {resources: {reservations: {devices: [{capabilities: [gpu]}]}}}",
        "services.s.deploy.resources.reservations.devices",
    ),
}


def test_refused_keys_answer_422_and_store_nothing(fleet: Fleet, tmp_path: Path) -> None:
    server = fleet.start_server()
    with server.http() as http:
        http.post(
            "/api/v1/applications",
            json={"name": "kept", "version": "1", "spec": {"services": {"s": {"image": IMAGE}}}},
        ).raise_for_status()
        for name, (snippet, key) in REFUSED.items():
            text = f"services:\n  s:\n    image: {IMAGE}\n    {snippet}\n"
            created = http.post(
                "/api/v1/applications",
                json={"project": "default", "name": f"bad-{name}", "version": "1", "compose": text},
            )
            assert created.status_code == 422, (name, created.text)
            body = created.json()
            errors = [f for f in body["findings"] if f["level"] == "error"]
            assert any(f["key"] == key and f["line"] == 4 for f in errors), (name, errors)
            assert key.split(".")[2] in body["detail"], body["detail"]
            # A refused version of an existing application is not stored either.
            added = http.post(
                "/api/v1/applications/kept/versions", json={"version": "2", "compose": text}
            )
            assert added.status_code == 422, name
        top = http.post(
            "/api/v1/applications",
            json={
                "name": "bad-top",
                "version": "1",
                "compose": f"include: [other.yml]\nservices:\n  s:\n    image: {IMAGE}\n",
            },
        )
        assert top.status_code == 422 and top.json()["findings"][0]["key"] == "include"
        apps = http.get("/api/v1/applications").json()["items"]
        assert [a["name"] for a in apps] == ["kept"] and apps[0]["versions"] == ["1"]
    # The CLI finds the same without uploading, with line numbers.
    path = tmp_path / "compose.yaml"
    path.write_text(f"services:\n  s:\n    image: {IMAGE}\n    build: .\n    privileged: true\n")
    done = subprocess.run(
        [sys.executable, "-m", "edgefleet", "apps", "validate", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "1000"},
    )
    assert done.returncode == 1
    assert f"error {path}:4: services.s.build:" in done.stderr
    assert f"warning {path}:5: services.s.privileged:" in done.stderr


NEEDS_PERMISSION = """
services:
  admin:
    image: localhost/ef-busybox:test
    command: ["sleep", "100000"]
    privileged: true
    init: true
  sniffer:
    image: localhost/ef-busybox:test
    command: ["sleep", "100000"]
    network_mode: host
    pid: host
    cap_add: [SYS_ADMIN]
    stop_grace_period: 1s  # no init: it cannot be PID 1 in the device's own PID namespace
  site:
    image: localhost/ef-busybox:test
    command: ["httpd", "-f", "-p", "80", "-h", "/srv"]
    volumes: ["{shared}:/srv:ro"]
    ports: ["127.0.0.1:{port}:80"]
    stop_grace_period: 1s
"""


@pytest.mark.podman
def test_each_device_decides_what_it_allows(engine: Any, fleet: Fleet, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "index.html").write_text("from the device's disk\n")
    port = free_port()
    server = fleet.start_server()
    key = fleet.key(labels={"site": "lab"})
    locked = fleet.start_agent("locked", key=key, runtime="docker", env={"DOCKER_HOST": engine.url})
    open_ = fleet.start_agent(
        "open",
        key=key,
        runtime="docker",
        env={"DOCKER_HOST": engine.url},
        extra_args=[
            "--allow-privileged",
            "--allow-published-ports",
            "--allow-host-path",
            str(tmp_path),
        ],
    )
    locked_id, open_id = locked.wait_enrolled(), open_.wait_enrolled()
    with server.client() as client:
        wait_for(lambda: all(d["is_online"] for d in client.devices()), 30, what="online")
        client.create_application(
            "needs-permission", "1", compose=NEEDS_PERMISSION.format(shared=shared, port=port)
        )
        job = client.create_job("needs-permission", selector={"site": "lab"})
    # The locked device says why at once, naming every key and the flag that allows it.
    row = next(d for d in job["devices"] if d["device"] == locked_id)
    assert row["state"] == "failed" and not row["eligible"]
    for words in (
        "cannot run here: service admin: privileged is not allowed on this device",
        "--allow-privileged",
        "service sniffer: network_mode: host",
        "service sniffer: pid: host",
        "service sniffer: cap_add SYS_ADMIN",
        f"service site: host path {shared} is not allowed",
        "--allow-host-path",
        f"service site: publishing port {port} on the device is not allowed",
    ):
        assert words in row["error"], (words, row["error"])

    def open_runs() -> bool:
        with server.client() as client:
            devices = {d["device"]: d for d in client.job(job["id"])["devices"]}
        return devices[open_id]["state"] == "running"

    wait_for(open_runs, 90, what="the open device runs it")
    assert not [c for c in containers(job["id"]) if c["Labels"]["io.edgefleet.device"] == locked_id]
    found = {
        c["Config"]["Labels"]["io.edgefleet.service"]: c
        for c in json.loads(
            podman("inspect", *[str(c["Id"]) for c in containers(job["id"])]).stdout
        )
    }
    assert found["admin"]["HostConfig"]["Privileged"] is True
    assert found["sniffer"]["HostConfig"]["NetworkMode"] == "host"
    assert found["sniffer"]["HostConfig"]["PidMode"] == "host"
    assert found["site"]["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"] == str(port)
    # Published on the device's interface, and serving the allowed host path.
    answer = wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/", timeout=3), 20, what="port")
    assert answer.text == "from the device's disk\n"
    # Through the proxy as well, for project members only.
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as http:
        proxied = http.get(f"/proxy/{job['id']}/{open_id}/site/80/")
    assert proxied.status_code == 200 and proxied.text == "from the device's disk\n"
