"""Staged rollouts through the CLI, on process-runtime agents: create with
rollout flags, upgrade, watch batches with ``jobs rollout show``, pause and
resume; a device that joins the selector mid-rollout gets the previous
version until the rollout is done, then the new one."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.conftest import Fleet
from tests.support.procs import ADMIN_TOKEN, wait_for

SPEC = {"services": {"app": {"x-edgefleet-runtime": "process", "command": ["sleep", "3600"]}}}


def test_cli_rollout_and_a_device_joining_mid_way(fleet: Fleet, database_url: str | None) -> None:
    """On SQLite and PostgreSQL (the rollout row is locked FOR UPDATE there)."""
    server = fleet.start_server()
    key = fleet.key(labels={"site": "a"})
    first = fleet.start_agent("cli-1", key=key)
    first_id = first.wait_enrolled()
    cli = [sys.executable, "-m", "edgefleet", "--server", server.url, "--token", ADMIN_TOKEN]

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=60)
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    with server.client() as client:
        client.create_application("clia", "1", spec=SPEC)
        client.add_version("clia", "2", spec=SPEC)
    created = json.loads(
        run(
            "jobs",
            "create",
            "clia",
            "--version",
            "1",
            "--selector",
            "site=a",
            "--max-parallel",
            "1",
            "--min-healthy-time",
            "600",
            "-o",
            "json",
        ).stdout
    )
    job = created["id"]
    assert created["rollout"]["max_parallel"] == 1 and created["rollout"]["state"] == "idle"

    def device(device_id: str) -> dict[str, Any]:
        with server.client() as client:
            rows = client.job(job)["devices"]
        return next((r for r in rows if r["device"] == device_id), {})

    wait_for(lambda: device(first_id).get("running_version") == "1", 60, what="v1 on cli-1")
    upgraded = run("jobs", "upgrade", job, "--version", "2").stdout
    assert "rollout rolling 1 → 2, batch 1 of 1" in upgraded, upgraded
    wait_for(lambda: device(first_id).get("running_version") == "2", 60, what="cli-1 moved")

    # A device joining now gets the previous version: the rollout is not done.
    second = fleet.start_agent("cli-2", key=key)
    second_id = second.wait_enrolled()
    wait_for(lambda: device(second_id).get("running_version") == "1", 60, what="joiner on v1")
    shown = run("jobs", "rollout", "show", job).stdout
    assert "rollout rolling" in shown and "cli-1:healthy(2)" in shown, shown

    paused = run("jobs", "rollout", "pause", job).stdout
    assert "rollout paused" in paused and "paused by admin" in paused, paused
    again = run("jobs", "rollout", "pause", job, ok=False)
    assert again.returncode == 0  # pausing a paused rollout is a no-op
    run("jobs", "rollout", "resume", job)
    # Shorter healthy time: the (only) batch completes, the rollout is done,
    # and the joiner gets the new version.
    run("jobs", "rollout", "set", job, "--min-healthy-time", "0")
    wait_for(
        lambda: (
            json.loads(run("jobs", "rollout", "show", job, "-o", "json").stdout)["state"] == "done"
        ),
        60,
        what="rollout done",
    )
    wait_for(lambda: device(second_id).get("running_version") == "2", 60, what="joiner on v2")
    refused = run("jobs", "rollout", "abort", job, ok=False)
    assert refused.returncode != 0 and "no rollout in progress" in refused.stderr
    assert "Traceback" not in refused.stderr
    bad = run("jobs", "rollout", "set", job, "--max-parallel", "0", ok=False)
    assert bad.returncode != 0 and "max_parallel" in bad.stderr and "Traceback" not in bad.stderr
