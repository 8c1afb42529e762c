"""Switching the running agent to another installed version, in place.

:func:`switch` is the last thing an agent does before it becomes the new
version: it records what to go back to (``pending.json``), starts the
watchdog, points ``current`` at the new venv and ``exec``s its python with the
same arguments. The pid stays, so a service manager sees one process, and
nothing the agent started is stopped.

:func:`follow_current` runs first in every ``edgefleet agent``: when a service
manager (re)starts the agent from the original install, it moves into the venv
``current`` names, so an upgrade survives restarts and reboots.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from edgefleet import __version__
from edgefleet.agent.upgrade.state import (
    Paths,
    Pending,
    current_target,
    point_current,
    write_pending,
)
from edgefleet.wire.upgrade import UpgradeOrder

SUPERVISED_ENV = "EDGEFLEET_SUPERVISED"  # set by the systemd unit: it restarts the agent


def _agent_argv(python: str) -> list[str]:
    # -P: the agent's working directory never shadows the installed version.
    return [python, "-P", "-m", "edgefleet", *sys.argv[1:]]


def supervised() -> bool:
    return os.environ.get(SUPERVISED_ENV) == "1"


def follow_current(state_dir: Path) -> None:
    """Exec the python of ``state_dir/current`` unless this process already is it."""
    paths = Paths(state_dir)
    target = current_target(paths)
    if target is None:
        return
    venv = (paths.root / target).resolve()
    python = paths.python_of(venv)
    if Path(sys.prefix).resolve() == venv or not python.exists():
        return
    os.execv(str(python), _agent_argv(str(python)))


def switch(paths: Paths, order: UpgradeOrder, python: Path) -> None:
    """Hand this process over to ``python`` (never returns on success)."""
    version = order.version
    pending = Pending(
        version=version,
        attempt=order.attempt,
        from_version=__version__,
        previous_target=current_target(paths),
        previous_python=sys.executable,
        argv=list(sys.orig_argv),
        deadline=order.deadline,
        switched_at=time.time(),
        agent_pid=os.getpid(),
        supervised=supervised(),
    )
    write_pending(paths, pending)
    # The watchdog runs the code of the version that works (this one), detached.
    starter = subprocess.Popen(
        [sys.executable, "-P", "-m", "edgefleet.agent.upgrade.watchdog", str(paths.root)],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    starter.wait(30)  # it forks and its first process exits at once: no zombie under us
    point_current(paths, os.path.relpath(paths.version_dir(version), paths.root))
    os.execv(str(python), _agent_argv(str(python)))
