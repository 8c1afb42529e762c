"""The upgrade watchdog against real processes standing in for the new agent:
it stops one that hangs past the deadline, notices one that exits, leaves one
that marks itself healthy alone, and rolls ``current`` back with the reason."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from edgefleet.agent.upgrade import watchdog
from edgefleet.agent.upgrade.state import (
    Paths,
    Pending,
    clear_pending,
    current_target,
    point_current,
    read_report,
    write_pending,
)


def _pending(paths: Paths, pid: int, deadline: float, supervised: bool = True) -> Pending:
    pending = Pending(
        version="2.0.0", from_version="1.0.0", previous_target=None,
        previous_python="/usr/bin/python3", argv=["/bin/true"], deadline=deadline,
        switched_at=time.time(), agent_pid=pid, supervised=supervised, attempt="upg1",
    )  # fmt: skip
    write_pending(paths, pending)
    point_current(paths, "versions/2.0.0")
    return pending


def test_a_new_agent_that_hangs_is_stopped_and_rolled_back(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    hung = subprocess.Popen(["sleep", "60"])
    pending = _pending(paths, hung.pid, deadline=1.0)
    reason = watchdog.watch(paths, pending)
    assert reason is not None and "within 1 s" in reason and "rolled back to 1.0.0" in reason
    assert hung.wait(5) is not None, "the hung agent was not stopped"
    assert watchdog.roll_back(paths, pending, reason) is None  # supervised: systemd restarts
    assert current_target(paths) is None
    report = read_report(tmp_path)
    assert report is not None and report.state == "rolled_back" and report.attempt == "upg1"
    assert report.reason == reason


def test_a_new_agent_that_exits_is_noticed_at_once(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    gone = subprocess.Popen(["true"])
    gone.wait()
    started = time.monotonic()
    reason = watchdog.watch(paths, _pending(paths, gone.pid, deadline=60.0))
    assert reason is not None and "exited before it reported healthy" in reason
    assert time.monotonic() - started < 5


def test_a_healthy_agent_is_left_alone(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    agent = subprocess.Popen(["sleep", "60"])
    try:
        pending = _pending(paths, agent.pid, deadline=30.0)
        clear_pending(paths)  # what the new agent does after its welcome
        assert watchdog.watch(paths, pending) is None
        assert agent.poll() is None and current_target(paths) == "versions/2.0.0"
    finally:
        agent.kill()
        agent.wait()


def test_unsupervised_rollback_starts_the_old_agent_again(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    paths.dir.mkdir(parents=True)
    marker = tmp_path / "old-agent-ran"
    pending = _pending(paths, 1, deadline=1.0, supervised=False)
    pending.argv = ["/bin/sh", "-c", f"echo ran > {marker}"]
    process = watchdog.roll_back(paths, pending, "test")
    assert process is not None
    assert int((paths.dir / "agent.pid").read_text()) == process.pid
    process.wait(10)
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "ran\n"
