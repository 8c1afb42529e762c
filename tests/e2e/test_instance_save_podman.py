"""Save and share for real (issue 21 part D): alice launches her instance on a
Podman engine, writes a file in it, saves it with the CLI as ``notebook:2``
(the device commits the container and pushes it to a real registry, Debian's
``docker-registry``, with the project's registry login), the image is in the
registry's catalog, and bob launches ``notebook:2`` — pulled back from the
registry, the local copy removed first — and finds alice's file inside. A login the
registry refuses fails the save in plain words (exit 1) and records nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet
from tests.support.podman import IMAGE, podman
from tests.support.procs import wait_for
from tests.support.registry import PASSWORD, USER, Registry

pytestmark = pytest.mark.podman

COMPOSE = f"""
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "exec httpd -f -p 8080 -h /var/www"]
    ports: ["8080"]
    init: true
    stop_grace_period: 1s
"""

BASE = [sys.executable, "-m", "edgefleet"]


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    found = Registry(tmp_path_factory.mktemp("registry"))
    found.start()
    try:
        yield found
    finally:
        found.stop()


def cli(server: Any, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BASE, "--server", server.url, "--token", token, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_instance_saved_pushed_and_launched_again(
    registry: Registry, engine: Any, fleet: Fleet, tmp_path: Path
) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("lab", runtime="docker", env={"DOCKER_HOST": registry.engine_url})
    device = agent.wait_enrolled()
    tokens: dict[str, str] = {}
    with server.client() as admin:
        wait_for(lambda: bool(admin.device(device)["is_online"]), 30, what="device online")
        for name in ("alice", "bob"):
            admin.create_user(name)
            admin.add_member("default", name, "developer")
            tokens[name] = admin.create_token(name, user=name)["token"]
        admin.add_registry(registry.host, USER, PASSWORD)
        admin.create_application("notebook", "1", compose=COMPOSE)
        admin.set_launchable("notebook", idle_timeout=600)
    pushed = f"{registry.host}/default/notebook"
    try:
        launched = cli(server, tokens["alice"], "instances", "launch", "notebook", "--wait", "120", "-o", "json")  # fmt: skip
        assert launched.returncode == 0, launched.stderr
        mine = json.loads(launched.stdout)
        with server.client(tokens["alice"]) as alice:
            wrote = alice.workload_exec(
                mine["job"], device, "web", ["sh", "-c", "echo made-by-alice > /root/notes.txt"]
            )
            assert wrote["exit_code"] == 0, wrote

        saved = cli(
            server, tokens["alice"], "instances", "save", mine["id"],
            "--service", "web", "--as", "notebook:2", "-o", "json",
        )  # fmt: skip
        assert saved.returncode == 0, saved.stderr + saved.stdout
        result = json.loads(saved.stdout)
        assert result["state"] == "done" and result["error"] is None
        assert result["image"].startswith(f"{pushed}@sha256:")
        assert result["progress"]["layers_total"] >= 1
        assert result["progress"]["layers_done"] == result["progress"]["layers_total"]
        assert "default/notebook" in registry.catalog()
        assert result["image"].endswith(registry.manifest_digest("default/notebook", "2"))

        # a second save onto the same version: a plain error, no traceback, exit 1
        again = cli(
            server, tokens["alice"], "instances", "save", mine["id"],
            "--service", "web", "--as", "notebook:2",
        )  # fmt: skip
        assert again.returncode == 1 and "already exists" in again.stderr
        assert "Traceback" not in again.stderr

        # into a new app of the project, with the progress bar (table output):
        # the new app is launchable like its parent
        fresh = cli(
            server, tokens["alice"], "instances", "save", mine["id"],
            "--service", "web", "--as", "notebook-lab:1",
        )  # fmt: skip
        assert fresh.returncode == 0, fresh.stderr + fresh.stdout
        assert "layers" in fresh.stderr and "done" in fresh.stdout
        with server.client(tokens["bob"]) as bob:
            assert bob.application("notebook-lab")["versions"] == ["1"]
            assert bob.get("/applications/notebook-lab/launchable")["idle_timeout"] == 600

        # a real fault: the registry refuses the project's login; the CLI says so and exits 1
        with server.client() as admin:
            admin.add_registry(registry.host, USER, "wrong-password")
        refused = cli(
            server, tokens["alice"], "instances", "save", mine["id"],
            "--service", "web", "--as", "notebook:3",
        )  # fmt: skip
        assert refused.returncode == 1, refused.stdout
        assert "failed" in refused.stderr and "unauthorized" in refused.stderr.lower()
        assert "Traceback" not in refused.stderr
        with server.client() as admin:
            assert admin.application("notebook")["versions"] == ["1", "2"]
            admin.add_registry(registry.host, USER, PASSWORD)

        # bob gets it from the registry, not from the device's local copy
        podman("rmi", "-f", f"{pushed}:2", check=False)
        podman("rmi", "-f", result["image"], check=False)
        assert podman("image", "exists", result["image"], check=False).returncode != 0
        theirs = cli(
            server, tokens["bob"], "instances", "launch", "notebook", "--version", "2",
            "--wait", "180", "-o", "json",
        )  # fmt: skip
        assert theirs.returncode == 0, theirs.stderr
        bobs = json.loads(theirs.stdout)
        assert bobs["owner"] == "bob" and bobs["version"] == "2"
        with server.client(tokens["bob"]) as bob:
            read = bob.workload_exec(bobs["job"], device, "web", ["cat", "/root/notes.txt"])
        assert read["exit_code"] == 0 and read["stdout"].strip() == "made-by-alice", read
    finally:
        engine.cleanup()
        podman("rmi", "-f", f"{pushed}:2", f"{registry.host}/default/notebook-lab:1", check=False)
