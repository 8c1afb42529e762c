"""The watchdog of one switch: ``python -m edgefleet.agent.upgrade.watchdog STATE_DIR``.

Started by the old version just before it execs the new one, it runs the old
(known good) code in a process of its own and waits, polling ``pending.json``:

- the new agent marks itself healthy (it removes ``pending.json``): done;
- the agent process is gone: roll back and start the old agent again;
- the deadline passes: stop the new agent (TERM, then KILL), roll back,
  start the old one again.

Rolling back points ``current`` where it pointed before and writes the reason
to ``report.json``; the old agent sends it in its facts when it reconnects.
Under a service manager (``EDGEFLEET_SUPERVISED=1``) the watchdog only rolls
back: the service manager restarts the agent, which then runs the old version.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from edgefleet.agent.upgrade.state import (
    Paths,
    Pending,
    clear_pending,
    point_current,
    read_pending,
    write_report,
)
from edgefleet.wire.upgrade import UpgradeReport

POLL = 0.25
STOP_GRACE = 10.0


def alive(pid: int) -> bool:
    """Running and not a zombie (a zombie still answers kill(pid, 0))."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop(pid: int) -> None:
    for sig, wait in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        until = time.monotonic() + wait
        while time.monotonic() < until and alive(pid):
            time.sleep(POLL)
        if not alive(pid):
            return


def watch(paths: Paths, pending: Pending) -> str | None:
    """None when the new version proved itself, else why it did not."""
    until = pending.switched_at + pending.deadline
    while True:
        current = read_pending(paths)
        if current is None or current.switched_at != pending.switched_at:
            return None  # marked healthy (or superseded by another switch)
        if not alive(pending.agent_pid):
            return (
                f"agent {pending.version} exited before it reported healthy; "
                f"rolled back to {pending.from_version}"
            )
        if time.time() >= until:
            stop(pending.agent_pid)
            return (
                f"agent {pending.version} did not reconnect and report healthy within "
                f"{pending.deadline:g} s; rolled back to {pending.from_version}"
            )
        time.sleep(POLL)


def roll_back(paths: Paths, pending: Pending, reason: str) -> subprocess.Popen[bytes] | None:
    """Point ``current`` back, report why, and (unsupervised) start the old agent;
    returns that agent's process (the watchdog exits right after: it is not waited)."""
    point_current(paths, pending.previous_target)
    clear_pending(paths)
    write_report(
        paths,
        UpgradeReport(
            version=pending.version,
            state="rolled_back",
            from_version=pending.from_version,
            reason=reason,
            attempt=pending.attempt,
        ),
    )
    if pending.supervised:
        return None
    with (paths.root / "agent.log").open("ab") as log:
        process = subprocess.Popen(
            pending.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    (paths.dir / "agent.pid").write_text(f"{process.pid}\n")
    return process


def main() -> int:
    paths = Paths(Path(sys.argv[1]))
    if os.fork() > 0:
        return 0  # the switching agent waits for this one; the watchdog lives on below
    pending = read_pending(paths)
    if pending is None:
        return 0
    reason = watch(paths, pending)
    if reason is not None:
        roll_back(paths, pending, reason)
    return 0


if __name__ == "__main__":
    sys.exit(main())
