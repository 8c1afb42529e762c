"""Personal instances on real Podman containers (issue 21): two developers
each launch their own instance of one launchable application with the CLI;
each opens only their own through the proxy until the other shares theirs;
stopping removes the container."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import Fleet
from tests.support.podman import IMAGE, containers
from tests.support.procs import wait_for

pytestmark = pytest.mark.podman

COMPOSE = f"""
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "echo $$EDGEFLEET_JOB_ID > /var/www/whoami; exec httpd -f -p 8080 -h /var/www"]
    ports: ["8080"]
    init: true
"""

BASE = [sys.executable, "-m", "edgefleet"]


def cli(server: Any, token: str, *args: str) -> Any:
    done = subprocess.run(
        [*BASE, "--server", server.url, "--token", token, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout) if "-o" in args else done.stdout


def test_two_users_instances_isolated_until_shared(engine: Any, fleet: Fleet) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("lab", runtime="docker", env={"DOCKER_HOST": engine.url})
    device = agent.wait_enrolled()

    def online() -> bool:
        with server.client() as admin:
            return bool(admin.device(device)["is_online"])

    wait_for(online, 30, what="device online")
    tokens = {}
    with server.client() as admin:
        for name in ("alice", "bob"):
            admin.create_user(name)
            admin.add_member("default", name, "developer")
            tokens[name] = admin.create_token(name, user=name)["token"]
        admin.create_application("notebook", "1", compose=COMPOSE)
    cli(server, tokens["alice"], "instances", "launchable", "notebook", "--idle-timeout", "600")
    mine = {
        name: cli(
            server, tokens[name], "instances", "launch", "notebook", "--wait", "120", "-o", "json"
        )
        for name in ("alice", "bob")
    }
    for name, inst in mine.items():
        assert inst["state"] == "running" and inst["owner"] == name
        assert inst["devices"][0]["device"] == device  # the one online device, picked for them
        assert len(containers(inst["job"])) == 1

    def status(name: str, whose: str) -> int:
        with server.http(tokens[name]) as http:
            answer = http.get(mine[whose]["urls"][0] + "whoami")
            if answer.status_code == 200:  # and it is that instance's own container
                assert answer.text.strip() == mine[whose]["job"]
            return answer.status_code

    wait_for(lambda: status("alice", "alice") == 200, 60, what="alice reaches hers")
    wait_for(lambda: status("bob", "bob") == 200, 60, what="bob reaches his")
    assert status("alice", "bob") == 404
    assert status("bob", "alice") == 404
    listed = cli(server, tokens["bob"], "instances", "list", "-o", "json")
    assert [i["id"] for i in listed] == [mine["bob"]["id"]]

    cli(server, tokens["alice"], "instances", "share", mine["alice"]["id"], "--user", "bob")
    assert status("bob", "alice") == 200
    assert status("alice", "bob") == 404  # sharing is one way
    listed = cli(server, tokens["bob"], "instances", "list", "-o", "json")
    assert sorted(i["id"] for i in listed) == sorted(i["id"] for i in mine.values())

    stopped = cli(server, tokens["alice"], "instances", "stop", mine["alice"]["id"], "-o", "json")
    assert stopped["state"] == "stopped"
    wait_for(lambda: not containers(mine["alice"]["job"]), 60, what="alice's container removed")
    assert len(containers(mine["bob"]["job"])) == 1
    # the CLI's errors are plain words, no traceback
    again = subprocess.run(
        [*BASE, "--server", server.url, "--token", tokens["bob"], "instances", "stop", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode != 0 and "instance 'x' not found" in again.stderr
    assert "Traceback" not in again.stderr
