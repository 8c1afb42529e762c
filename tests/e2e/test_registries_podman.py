"""Private registries for real: a registry (Distribution, Debian's
``docker-registry``) on loopback with htpasswd logins, the test image pushed
into it, and an agent on a Podman engine that trusts it over plain HTTP.

A pull without credentials fails and says so, naming the image and the
registry's answer; credentials added with ``edgefleet registries add`` are
stored encrypted, never shown again, handed to the device and used at once;
a wrong password and ``pull_policy: never`` fail in plain words."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgefleet.client.errors import ApiError
from tests.conftest import Fleet
from tests.support.podman import CONF, IMAGE, podman
from tests.support.procs import ADMIN_TOKEN, free_port, wait_for

pytestmark = pytest.mark.podman

USER, PASSWORD = "alice", "s3cret-registry-pass"


@dataclass
class Registry:
    host: str
    engine_url: str  # a Podman engine that trusts this registry over plain HTTP


def _start(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


@pytest.fixture
def registry(engine: Any, tmp_path: Path) -> Iterator[Registry]:
    for tool in ("docker-registry", "htpasswd"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed: run scripts/install-test-deps.sh")
    port = free_port()
    host = f"127.0.0.1:{port}"
    logins = subprocess.run(
        ["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True
    ).stdout
    (tmp_path / "htpasswd").write_text(logins)
    (tmp_path / "registry.yml").write_text(
        f"version: 0.1\nlog: {{level: warn}}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'blobs'}}}}}\n"
        f"http: {{addr: '{host}'}}\n"
        f"auth: {{htpasswd: {{realm: edgefleet-test, path: {tmp_path / 'htpasswd'}}}}}\n"
    )
    (tmp_path / "registries.conf").write_text(
        f'[[registry]]\nlocation = "{host}"\ninsecure = true\n'
    )
    env = dict(os.environ, CONTAINERS_CONF=str(CONF))
    distribution = _start(
        ["docker-registry", "serve", str(tmp_path / "registry.yml")], tmp_path / "registry.log", env
    )
    socket = tmp_path / "podman-registry.sock"
    service = _start(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        tmp_path / "podman-registry.log",
        dict(env, CONTAINERS_REGISTRIES_CONF=str(tmp_path / "registries.conf")),
    )
    try:
        wait_for(
            lambda: httpx.get(f"http://{host}/v2/", timeout=2).status_code == 401,
            20,
            what="registry up",
        )
        wait_for(socket.exists, 30, what="podman service")
        for tag in ("1", "2"):
            podman(
                "push", "--tls-verify=false", "--creds", f"{USER}:{PASSWORD}", IMAGE,
                f"{host}/private/busybox:{tag}",
            )  # fmt: skip
        yield Registry(host, f"unix://{socket}")
    finally:
        engine.cleanup()
        for tag in ("1", "2"):
            podman("rmi", "-f", f"{host}/private/busybox:{tag}", check=False)
        for proc in (service, distribution):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def app(image: str, policy: str = "missing") -> str:
    return f"""
services:
  web:
    image: {image}
    pull_policy: {policy}
    command: ["httpd", "-f", "-p", "80", "-h", "/var/www"]
    stop_grace_period: 1s
"""


def device_row(server: Any, job_id: str) -> dict[str, Any]:
    with server.client() as client:
        row: dict[str, Any] = client.job(job_id)["devices"][0]
    return row


def cli(server: Any, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, EDGEFLEET_SERVER=server.url, EDGEFLEET_TOKEN=ADMIN_TOKEN, COLUMNS="300")
    return subprocess.run(
        [sys.executable, "-m", "edgefleet", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_private_registry_credentials_end_to_end(
    registry: Registry, fleet: Fleet, tmp_path: Path
) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("pi", runtime="docker", env={"DOCKER_HOST": registry.engine_url})
    device = agent.wait_enrolled()
    image = f"{registry.host}/private/busybox:1"
    with server.client() as client:
        client.create_application("private", "1", compose=app(image))
        job_id = client.create_job("private", devices=[device])["id"]

    # No credentials yet: the device says which image, which registry, and what it answered.
    def failed_to_pull() -> str | None:
        row = device_row(server, job_id)
        return row["error"] if row["state"] == "failed" and row["error"] else None

    error = wait_for(failed_to_pull, 60, what="the pull to fail")
    assert f"cannot pull image {image} from {registry.host}" in error, error
    assert "unauthorized" in error and "edgefleet registries add" in error, error

    # Viewers see the list; only owner, operator and developer may add; outsiders see nothing.
    with server.client() as client:
        client.create_user("vera", password="vera-password-123")
        client.create_user("otto", password="otto-password-123")
        client.add_member("default", "vera", "viewer")
        vera = client.create_token("t", user="vera")["token"]
        otto = client.create_token("t", user="otto")["token"]
    with server.client(vera) as client:
        assert client.registries() == []
        with pytest.raises(ApiError) as refused:
            client.add_registry(registry.host, USER, PASSWORD)
        assert refused.value.status == 403
    with server.client(otto) as client, pytest.raises(ApiError) as hidden:
        client.registries()
    assert hidden.value.status == 404

    # Added from the CLI (password on stdin): the job pulls and runs without being touched.
    added = cli(
        server, "registries", "add", registry.host, "-u", USER, "--password-stdin", stdin=PASSWORD
    )
    assert added.returncode == 0, added.stderr
    wait_for(
        lambda: device_row(server, job_id)["state"] == "running", 90, what="pulled and running"
    )

    # Never shown again: not by the API, not in the CLI, not in the database file.
    with server.http() as http:
        listed = http.get("/api/v1/projects/default/registries")
    assert listed.status_code == 200 and PASSWORD not in listed.text
    (item,) = listed.json()["items"]
    assert (item["registry"], item["username"]) == (registry.host, USER)
    assert "password" not in item and "secret" not in item
    shown = cli(server, "registries", "list")
    assert registry.host in shown.stdout and USER in shown.stdout and PASSWORD not in shown.stdout
    for path in server.data_dir.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    key = server.data_dir / "secret.key"
    assert key.stat().st_mode & 0o777 == 0o600

    # A wrong password is the registry's refusal, in words.
    with server.client() as client:
        client.add_registry(f"http://{registry.host}/", USER, "wrong-password")
        assert [r["username"] for r in client.registries()] == [USER]  # replaced, not added
        client.create_application(
            "private-2", "1", compose=app(f"{registry.host}/private/busybox:2")
        )
        second = client.create_job("private-2", devices=[device])["id"]
    error = wait_for(
        lambda: (r := device_row(server, second))["state"] == "failed" and r["error"],
        60,
        what="refused",
    )
    assert "were refused" in error and "private/busybox:2" in error, error

    # pull_policy: never uses only what the device has.
    with server.client() as client:
        client.create_application(
            "never", "1", compose=app(f"{registry.host}/private/absent:1", "never")
        )
        third = client.create_job("never", devices=[device])["id"]
    error = wait_for(
        lambda: (r := device_row(server, third))["state"] == "failed" and r["error"],
        60,
        what="never",
    )
    assert "is not on this device and pull_policy is 'never'" in error, error

    removed = cli(server, "registries", "rm", registry.host)
    assert removed.returncode == 0, removed.stderr
    with server.client() as client:
        assert client.registries() == []
    # The running job keeps running: its image is on the device.
    assert device_row(server, job_id)["state"] == "running"
