"""A launchable web tool on one process-runtime device, and developers to launch
it: what the instance attack suites start from (process workloads, so no
engine is needed)."""

from __future__ import annotations

import json
import sys
from typing import Any

from tests.support.procs import wait_for

SERVE = (
    "import http.server,sys; http.server.test(http.server.SimpleHTTPRequestHandler,"
    " port=int(sys.argv[1]), bind='127.0.0.1')"
)


def web_tool(port: int) -> str:
    """A compose file serving the working directory on ``port`` (loopback)."""
    return f"""
services:
  web:
    x-edgefleet-runtime: process
    command: ["{sys.executable}", "-c", {json.dumps(SERVE)}, "{port}"]
    expose: ["{port}"]
"""


def online_device(fleet: Any) -> tuple[Any, str]:
    """A server and one process-runtime device, online."""
    server = fleet.start_server()
    device = fleet.start_agent("box", runtime="process").wait_enrolled()

    def online() -> bool:
        with server.client() as admin:
            return bool(admin.device(device)["is_online"])

    wait_for(online, 30, what="device online")
    return server, device


def developers(admin: Any, members: dict[str, str], password: str | None = None) -> dict[str, str]:
    """Create each user as a developer of their project; their API tokens by name.
    Projects other than ``default`` are created first."""
    for project in sorted(set(members.values()) - {"default"}):
        admin.create_project(project)
    tokens: dict[str, str] = {}
    for name, project in members.items():
        if password is None:
            admin.create_user(name)
        else:
            admin.create_user(name, password=password)
        admin.add_member(project, name, "developer")
        tokens[name] = admin.create_token(name, user=name)["token"]
    return tokens
