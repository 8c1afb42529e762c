"""Images built where they run (issue 21) on real Podman: an application with a
Compose ``build:`` uploaded with ``edgefleet apps create … --context DIR`` is
built by each of two devices with its own engine and runs with the built file
inside; a version whose build fails is reported like a failed pull while the
built version keeps running.

Both agents share the one Podman engine of the test run (as other e2e tests
do): each device still fetches the context itself and runs its own build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet
from tests.support.podman import IMAGE, containers, podman
from tests.support.procs import ADMIN_TOKEN, wait_for

pytestmark = pytest.mark.podman

COMPOSE = """
services:
  web:
    build:
      context: src
      dockerfile: Containerfile
      args: {GREETING: built-on-device}
    command: ["sh", "-c", "exec sleep 100000"]
    stop_grace_period: 1s
"""
CONTAINERFILE = f"""FROM {IMAGE}
ARG GREETING
COPY hello.txt /built/hello.txt
RUN echo "$GREETING" > /built/greeting.txt && sleep 3
"""


def cli(server: Any, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "edgefleet", "--server", server.url, "--token", ADMIN_TOKEN, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_build_context_built_on_two_devices(engine: Any, fleet: Fleet, tmp_path: Path) -> None:
    server = fleet.start_server()
    key = fleet.key(labels={"role": "builder"})
    agents = [
        fleet.start_agent(name, key=key, runtime="docker", env={"DOCKER_HOST": engine.url})
        for name in ("b-1", "b-2")
    ]
    ids = {a.wait_enrolled() for a in agents}
    src = tmp_path / "ctx" / "src"
    src.mkdir(parents=True)
    (src / "Containerfile").write_text(CONTAINERFILE)
    (src / "hello.txt").write_text("hello from the build context\n")
    (tmp_path / "ctx" / "unused.bin").write_bytes(b"\0" * 1024)  # outside build.context
    compose = tmp_path / "compose.yaml"
    compose.write_text(COMPOSE)
    cli(server, "apps", "create", "builder", "-f", str(compose), "--context", str(tmp_path / "ctx"))

    with server.client() as client:
        job_id = client.create_job("builder", selector={"role": "builder"})["id"]

    seen: set[str] = set()  # the builds' progress, as the job's status shows it

    def running_on_both() -> bool:
        with server.client() as client:
            devices = [d for d in client.job(job_id)["devices"] if d["assigned"]]
        seen.update(s["progress"] for d in devices for s in d["services"].values() if s["progress"])
        return len(devices) == 2 and all(d["state"] == "running" for d in devices)

    wait_for(running_on_both, 180, what="the built image running on both devices")
    # The build's steps show as progress; which of them a poll catches depends on speed.
    assert any(p.startswith("building: STEP") for p in seen), seen
    found = containers(job_id)
    assert {str(c["Labels"]["io.edgefleet.device"]) for c in found} == ids  # type: ignore[index]
    for container in found:
        assert str(container["Image"]).startswith("localhost/ef-build/builder:1-")
        inside = podman(
            "exec", str(container["Id"]), "cat", "/built/hello.txt", "/built/greeting.txt"
        )
        assert inside.stdout == "hello from the build context\nbuilt-on-device\n"

    # A version whose build fails: reported like a failed pull, v1 keeps running.
    (src / "Containerfile").write_text(f"FROM {IMAGE}\nRUN echo step-broke && exit 7\n")
    cli(
        server,
        "apps",
        "version",
        "builder",
        "-f",
        str(compose),
        "-v",
        "2",
        "--context",
        str(tmp_path / "ctx"),
    )
    with server.client() as client:
        client.update_job(job_id, version="2")

    def build_failed() -> bool:
        with server.client() as client:
            devices = client.job(job_id)["devices"]
        return all(
            d["error"] and "building image" in d["error"] and d["version"] == "1" for d in devices
        )

    wait_for(build_failed, 180, what="the failed build reported on both devices")
    with server.client() as client:
        error = client.job(job_id)["devices"][0]["error"]
    assert "localhost/ef-build/builder:2-" in error and "step-broke" in error
    assert all(c["State"] == "running" for c in containers(job_id))
    with server.client() as client:
        client.cancel_job(job_id)
    wait_for(lambda: not containers(job_id), 60, what="workloads removed")
    for line in podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split():
        if line.startswith("localhost/ef-build/builder:"):
            podman("rmi", "-f", line, check=False)
