"""`edgefleet up`, as a newcomer runs it: a server, a local agent and a demo
job, with the CLI logged in, in well under a minute."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.procs import base_env, free_port, wait_for


def _kill_workloads(state_dir: Path) -> None:
    for meta in (state_dir / "processes").glob("*/meta.json"):
        pid = json.loads(meta.read_text()).get("pid")
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def test_up_starts_everything_and_deploys_the_demo(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(XDG_CONFIG_HOME=str(tmp_path / "config"))
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        up = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgefleet",
                "up",
                "--data-dir",
                str(tmp_path / "data"),
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        started = time.monotonic()
        wait_for(lambda: "Press Ctrl-C" in log.read_text(), 60, what="up ready")
        text = log.read_text()
        assert time.monotonic() - started < 60
        token = text.split("admin token:", 1)[1].split()[0]
        demo = text.split("demo app:", 1)[1].split()[0]
        assert f"http://127.0.0.1:{port}/" in text
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
            page = wait_for(
                lambda: http.get(demo).text if http.get(demo).status_code == 200 else None,
                30,
                what="demo page",
            )
            assert "Hello from edgefleet" in page
        listed = subprocess.run(
            [sys.executable, "-m", "edgefleet", "devices", "list", "-o", "json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert listed.returncode == 0, listed.stderr
        devices = json.loads(listed.stdout)
        assert (
            len(devices) == 1
            and devices[0]["is_online"]
            and devices[0]["labels"] == {"edgefleet-local": "true"}
        )
        up.send_signal(signal.SIGINT)
        assert up.wait(30) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(10)  # reaped here, not by the garbage collector in a later test
        _kill_workloads(tmp_path / "data" / "agent")
