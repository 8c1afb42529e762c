"""Attacks on the agent's local API (issue 21): who may connect to its socket,
malformed and oversized requests, names that try to be paths, and a local
app the device's policy refuses (like a fleet job)."""

from __future__ import annotations

import grp
import os
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.procs import AgentProc, wait_for

GROUP = "users"  # present on Debian; the owner's group in these tests


def start(fleet: Fleet, name: str, *extra: str) -> AgentProc:
    fleet.start_server()
    agent = fleet.start_agent(name, extra_args=list(extra))
    agent.wait_enrolled()
    sock = (
        Path(extra[extra.index("--local-api-socket") + 1])
        if "--local-api-socket" in extra
        else None
    )
    path = sock or agent.state_dir / "agent.sock"
    wait_for(path.exists, 30, what="local API socket")
    return agent


def raw(sock: Path, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(sock))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def cli_as(
    uid: int, gid: int, groups: str, state_dir: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """The real CLI, run as another user (setpriv: no /etc changes needed)."""
    return subprocess.run(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            f"--groups={groups}",
            sys.executable,
            "-m",
            "edgefleet",
            "agent",
            *args,
            "--state-dir",
            str(state_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": "/tmp", "COLUMNS": "200"},
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another user")
def test_socket_is_0660_and_only_its_group_may_connect(fleet: Fleet) -> None:
    gid = grp.getgrnam(GROUP).gr_gid
    # pytest's own tmp dirs are closed to other users: the socket goes in an open one.
    where = Path(tempfile.mkdtemp(prefix="ef-local-"))
    os.chmod(where, 0o755)
    sock = where / "agent.sock"
    agent = start(fleet, "local-perm", "--local-api-group", GROUP, "--local-api-socket", str(sock))
    info = sock.stat()
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o660
    assert (info.st_uid, info.st_gid) == (0, gid)
    # nobody (not in the group) cannot connect: a plain error, no traceback.
    denied = cli_as(65534, 65534, "65534", agent.state_dir, "status", "--socket", str(sock))
    assert denied.returncode != 0, denied.stderr
    assert "permission denied" in denied.stderr.lower(), denied.stderr[-600:]
    assert "permission denied" in denied.stderr.lower() and "Traceback" not in denied.stderr
    # A member of the owner's group can.
    member = cli_as(
        65534, 65534, str(gid), agent.state_dir, "status", "-o", "json", "--socket", str(sock)
    )
    assert member.returncode == 0, member.stderr
    assert agent.device_id() in member.stdout
    agent.stop()
    assert not sock.exists()
    where.rmdir()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another user")
def test_without_a_group_only_the_agents_user_may_connect(fleet: Fleet) -> None:
    agent = start(fleet, "local-nogroup")
    sock = agent.state_dir / "agent.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o660
    assert stat.S_IMODE(agent.state_dir.stat().st_mode) == 0o700
    gid = grp.getgrnam(GROUP).gr_gid
    denied = cli_as(65534, 65534, str(gid), agent.state_dir, "jobs")
    assert denied.returncode != 0 and "Traceback" not in denied.stderr


def test_malformed_oversized_and_path_like_requests(fleet: Fleet) -> None:
    agent = start(fleet, "local-bad")
    sock = agent.state_dir / "agent.sock"
    assert raw(sock, b"\x16\x03\x01garbage\r\n\r\n").startswith(b"HTTP/1.1 400")
    huge_head = b"GET /status HTTP/1.1\r\nhost: a\r\nx-pad: " + b"a" * 40_000 + b"\r\n\r\n"
    assert raw(sock, huge_head).startswith(b"HTTP/1.1 4")
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://agent") as c:
        big = c.post(
            "/apps", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}
        )
        assert big.status_code == 413
        assert c.post("/apps", content=b"{not json").status_code == 400
        missing = c.post("/apps", json={"name": "x"})
        assert missing.status_code == 422 and "compose" in missing.json()["error"]
        for path in (
            "/jobs/..%2F..%2Fetc/services/x/logs",
            "/jobs/../../etc/passwd",
            "/jobs/%2e%2e/services/%2e%2e/stop",
            "/jobs/a/services/..%2Fdevice.json/logs",
            "/apps/..%2F..%2Fdevice.json",
        ):
            answer = c.request("POST" if path.endswith("stop") else "GET", path)
            assert answer.status_code in (400, 404, 405), (path, answer.status_code)
            assert "credential" not in answer.text
        bad_name = c.post("/apps", json={"name": "../x", "compose": "services: {}"})
        assert bad_name.status_code == 422 and bad_name.json()["error"].startswith("name:")
        assert c.get("/status").status_code == 200  # still serving
        assert c.get("/backlog").json() == {"streams": [], "files_pending": 0}
        assert c.get("/desired").json()["jobs"] == []
        assert "/jobs/{job}/services/{service}/stop" in c.get("/openapi.json").json()["paths"]
        assert c.delete("/status").status_code == 405
    assert not list(agent.state_dir.glob("../*.json"))


PRIVILEGED = """
services:
  evil:
    image: docker.io/library/busybox:latest
    privileged: true
    volumes: ["/:/host"]
"""


def test_local_app_under_device_policy_is_refused_like_a_fleet_job(
    fleet: Fleet, tmp_path: Path
) -> None:
    agent = start(fleet, "local-policy")
    compose = tmp_path / "compose.yaml"
    compose.write_text(PRIVILEGED)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgefleet",
            "agent",
            "apps",
            "run",
            "-f",
            str(compose),
            "evil",
            "--state-dir",
            str(agent.state_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "cannot run here" in result.stderr and "privileged" in result.stderr
    assert "Traceback" not in result.stderr
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgefleet",
            "agent",
            "apps",
            "list",
            "-o",
            "json",
            "--state-dir",
            str(agent.state_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0 and listed.stdout.strip() == "[]"
    assert not (agent.state_dir / "local-apps.json").exists()
