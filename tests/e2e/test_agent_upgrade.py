"""Agent upgrades over the air (issue 18), on a real server and a real agent
process: a newly built wheel is installed beside the running agent, which
re-execs into it and reconnects with the new version; a broken wheel is
rolled back by the device itself, with the reason on the server. The agent's
process workload keeps its pid throughout (nothing restarted it)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgefleet import __version__
from tests.conftest import Fleet
from tests.support.procs import ADMIN_TOKEN, wait_for
from tests.support.wheels import build_wheel

pytestmark = pytest.mark.slow

GOOD = f"{__version__}+ota1"
BROKEN = f"{__version__}+broken"
SLEEPER = {
    "services": {
        "sleeper": {
            "x-edgefleet-runtime": "process",
            "command": ["/bin/sh", "-c", "exec sleep 100000"],
        }
    }
}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("wheels")
    return {GOOD: build_wheel(work, GOOD), BROKEN: build_wheel(work, BROKEN, broken=True)}


def _workload_pid(state_dir: Path) -> int:
    metas = list(state_dir.glob("**/processes/*/meta.json"))
    assert len(metas) == 1, metas
    return int(json.loads(metas[0].read_text())["pid"])


def _deploy(fleet: Fleet, device: str) -> None:
    assert fleet.server is not None
    with fleet.server.client() as client:
        client.create_application("sleeper", "1", spec=SLEEPER)
        job = client.create_job("sleeper", version="1", devices=[device])

        def running() -> bool:
            return bool(client.job(job["id"])["devices"][0]["state"] == "running")

        wait_for(running, 60, what="the process workload running")


def _kill_restarted(state_dir: Path) -> None:
    """An agent the watchdog started again is not the test's child: stop it here."""
    pid_file = state_dir / "upgrade" / "agent.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


@contextlib.contextmanager
def _portal(server_url: str) -> Iterator[httpx.Client]:
    """A portal session of the admin (token sign-in)."""
    with httpx.Client(base_url=server_url, timeout=30) as browser:
        page = browser.get("/login")
        login_csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert login_csrf, page.text[:500]
        form = {"method": "token", "token": ADMIN_TOKEN, "csrf": login_csrf.group(1), "next": "/"}
        assert browser.post("/login", data=form).status_code == 303
        yield browser


def _cli(server_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, EDGEFLEET_SERVER=server_url, EDGEFLEET_TOKEN=ADMIN_TOKEN, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "edgefleet", *args],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip


def _device(fleet: Fleet, device: str) -> dict[str, Any]:
    assert fleet.server is not None
    with fleet.server.client() as client:
        return client.device(device)


def test_agent_upgraded_to_a_new_wheel_reconnects_with_its_version(
    fleet: Fleet, wheels: dict[str, Path]
) -> None:
    server = fleet.start_server(extra_args=["--agent-upgrade-interval", "0.3"])
    agent = fleet.start_agent("ota", runtime="process")
    device = agent.wait_enrolled()
    _deploy(fleet, device)
    workload = _workload_pid(agent.state_dir)
    assert agent.process is not None
    agent_pid = agent.process.pid
    # As a user would: the CLI's pinned verbs.
    uploaded = _cli(server.url, "agent-releases", "upload", str(wheels[GOOD]), "--version", GOOD)
    assert uploaded.returncode == 0 and GOOD in uploaded.stdout, uploaded.stderr
    upgraded = _cli(
        server.url, "devices", "upgrade-agent", "--devices", device, "--version", GOOD,
        "--deadline", "60", "-o", "json",
    )  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    done = json.loads(upgraded.stdout)
    assert done["state"] == "done", done
    assert done["devices"][0]["state"] == "healthy"
    seen = _device(fleet, device)
    assert seen["agent_version"] == GOOD and seen["is_online"], seen
    report = json.loads((agent.state_dir / "upgrade" / "report.json").read_text())
    assert report["state"] == "healthy" and report["from_version"] == __version__, report
    assert seen["agent_upgrade"]["version"] == GOOD
    # Same process (re-exec'd in place), now running from its own venv.
    assert agent.running, "the agent process is gone"
    argv = Path(f"/proc/{agent_pid}/cmdline").read_bytes().split(b"\0")
    assert argv[0].decode() == str(agent.state_dir / "versions" / GOOD / "bin" / "python"), argv
    assert (agent.state_dir / "current").resolve() == (agent.state_dir / "versions" / GOOD)
    assert _workload_pid(agent.state_dir) == workload, "the workload was restarted"
    os.kill(workload, 0)  # and still runs


def test_broken_wheel_is_rolled_back_by_the_agent_with_the_reason(
    fleet: Fleet, wheels: dict[str, Path]
) -> None:
    server = fleet.start_server(extra_args=["--agent-upgrade-interval", "0.3"])
    agent = fleet.start_agent("ota-bad", runtime="process")
    device = agent.wait_enrolled()
    _deploy(fleet, device)
    workload = _workload_pid(agent.state_dir)
    try:
        with server.client() as client:
            client.upload_agent_release(wheels[BROKEN], BROKEN)
        # Started from the portal's form, as an operator would.
        with _portal(server.url) as browser:
            page = browser.get("/agent-upgrades")
            assert page.status_code == 200 and BROKEN in page.text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf, page.text[:500]
            form = {"csrf": csrf.group(1), "version": BROKEN, "project": "default"}
            started = browser.post("/agent-upgrades", data={**form, "devices": device})
            assert started.status_code == 303, started.text[:500]
            upgrade_id = started.headers["location"].rsplit("/", 1)[1]
        with server.client() as client:
            done = client.wait_agent_upgrade(upgrade_id, timeout=120)
        assert done["state"] == "failed", done
        entry = done["devices"][0]
        assert entry["state"] == "failed"
        assert "exited before it reported healthy" in entry["error"], entry
        assert f"rolled back to {__version__}" in entry["error"], entry

        def back() -> dict[str, Any] | None:
            seen = _device(fleet, device)
            return seen if seen["is_online"] and seen["agent_version"] == __version__ else None

        seen = wait_for(back, 60, what="the old agent back online")
        # The reason is on the device too (API; the portal's device page shows it).
        assert seen["agent_upgrade"]["state"] == "rolled_back", seen["agent_upgrade"]
        assert "exited before it reported healthy" in seen["agent_upgrade"]["reason"]
        report = json.loads((agent.state_dir / "upgrade" / "report.json").read_text())
        assert report["state"] == "rolled_back" and report["version"] == BROKEN, report
        with _portal(server.url) as browser:
            rollout = browser.get(f"/agent-upgrades/{upgrade_id}").text
            assert "exited before it reported healthy" in rollout
            assert "exited before it reported healthy" in browser.get(f"/devices/{device}").text
        assert not (agent.state_dir / "current").exists(), "current still points at the release"
        assert _workload_pid(agent.state_dir) == workload, "the workload was restarted"
        os.kill(workload, 0)
    finally:
        _kill_restarted(agent.state_dir)
