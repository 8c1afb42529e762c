"""Storage that outlives a job (issue 21), on real Podman: a project volume
written by one job is still there, with its file, for the next job that
mounts it after the first is cancelled (and its own volumes removed); its
size per device, its tar download from the device, and its removal."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet
from tests.support.podman import IMAGE, containers, podman
from tests.support.procs import ADMIN_TOKEN, wait_for

pytestmark = pytest.mark.podman


def cli(server: Any, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "edgefleet", "--server", server.url, "--token", ADMIN_TOKEN, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def compose(command: str) -> str:
    return f"""
services:
  work:
    image: {IMAGE}
    command: ["sh", "-c", "{command}"]
    volumes: ["shared:/shared", "scratch:/scratch"]
    init: true
volumes:
  shared: {{external: true, x-edgefleet-project-volume: true}}
  scratch: {{}}
"""


def test_project_volume_survives_its_job(engine: Any, fleet: Fleet, tmp_path: Path) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("store", runtime="docker", env={"DOCKER_HOST": engine.url})
    device = agent.wait_enrolled()
    with server.client() as client:
        made = json.loads(cli(server, "volumes", "create", "shared", "-o", "json"))
        assert made["engine_name"] == f"ef-proj-{client.project('default')['id']}-shared"
        writer = "echo written-by-job-1 > /shared/note.txt; echo temp > /scratch/t; sleep 3600"
        client.create_application("writer", "1", compose=compose(writer))
        first = client.create_job("writer", devices=[device])["id"]
        wait_for(lambda: client.job(first)["state"] == "running", 120, what="job 1 running")
        client.cancel_job(first)
    wait_for(lambda: not containers(first), 60, what="job 1's container removed")

    def volumes() -> list[str]:
        return podman("volume", "ls", "--format", "{{.Name}}").stdout.split()

    # the removal's last step (after its containers) drops the job's own volumes
    wait_for(
        lambda: not [v for v in volumes() if v.startswith(f"ef-{first}")],
        60,
        what="job 1's own volume removed",
    )
    assert made["engine_name"] in volumes()  # kept: the project's, not the job's
    reader = "cat /shared/note.txt; echo scratch=$$(ls /scratch | wc -l); sleep 3600"
    with server.client() as client:
        client.create_application("reader", "1", compose=compose(reader))
        second = client.create_job("reader", devices=[device])["id"]
        wait_for(lambda: client.job(second)["state"] == "running", 120, what="job 2 running")

        def logged() -> str | None:
            text = "\n".join(client.logs(second, tail=20))
            return text if "written-by-job-1" in text and "scratch=" in text else None

        seen = wait_for(logged, 30, what="job 2 reads job 1's file")
        assert "scratch=0" in seen, seen  # scratch was job 1's own volume: a new, empty one
        client.cancel_job(second)
    wait_for(lambda: not containers(second), 60, what="job 2's container removed")
    with server.http() as http:
        shown = http.get("/api/v1/projects/default/volumes/shared").json()
        [row] = shown["devices"]
        assert row["device"] == device and row["state"] == "present"
        assert row["size"] == len("written-by-job-1\n")
        # the volume as a tar, streamed from the device through its agent
        target = tmp_path / "shared.tar"
        cli(server, "volumes", "download", "shared", "--device", device, "--out", str(target))
        with tarfile.open(target) as archive:
            member = archive.extractfile("./note.txt")
            assert member is not None and member.read() == b"written-by-job-1\n"
        gone = http.delete("/api/v1/projects/default/volumes/shared")
        assert gone.status_code == 200, gone.text
        assert [d["state"] for d in gone.json()["devices"]] == ["removed"]
        assert http.get("/api/v1/projects/default/volumes/shared").status_code == 404
    assert made["engine_name"] not in podman("volume", "ls", "--format", "{{.Name}}").stdout
