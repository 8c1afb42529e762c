"""The process runtime's bookkeeping: one directory per workload under the
runtime's root (inside the agent's state dir, 0700), holding ``meta.json``
(what to run, the pid and its kernel start time, restarts), ``stdout.log``,
``stderr.log`` and ``exit_code``. Everything the runtime knows about a
workload is read back from here, so a restarted agent adopts its processes.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.runtimes.workload import LABEL_INPUTS, LABEL_JOB, Workload, WorkloadState
from edgefleet.agent.state import atomic_write


def start_ticks(pid: int) -> int | None:
    """The kernel start time of ``pid`` (``None`` when gone or a zombie): with the pid,
    it tells our process from a later one that got the same pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


class Book:
    """The workloads' directories under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)

    def dir(self, workload_id: str) -> Path:
        if "/" in workload_id or workload_id.startswith("."):
            raise RuntimeFailure(f"invalid workload id {workload_id!r}")
        return self.root / workload_id

    def meta(self, workload_id: str) -> dict[str, Any] | None:
        try:
            meta: dict[str, Any] = json.loads((self.dir(workload_id) / "meta.json").read_text())
            return meta
        except (OSError, ValueError):
            return None

    def save(self, workload_id: str, meta: dict[str, Any]) -> None:
        atomic_write(self.dir(workload_id) / "meta.json", json.dumps(meta).encode(), 0o600)

    def exit_code(self, workload_id: str) -> int | None:
        try:
            return int((self.dir(workload_id) / "exit_code").read_text().strip())
        except (OSError, ValueError):
            return None


def as_workload(meta: dict[str, Any], alive: bool, exit_code: int | None) -> Workload:
    """A workload as its bookkeeping says: ``alive`` (its pid is still its own) and the
    ``exit_code`` its wrapper wrote, if any."""
    labels = meta["labels"]
    state: WorkloadState
    if alive:
        state = "running"
    elif meta.get("pid"):
        state = "restarting" if meta.get("restart_due") else "exited"
    else:
        state = "created"
    if state in ("running", "created"):
        exit_code = None
    if state in ("exited", "restarting") and exit_code is None:
        exit_code = meta.get("killed_code", 137)
    return Workload(
        id=meta["id"],
        name=meta["id"],
        job_id=labels[LABEL_JOB],
        service=labels["io.edgefleet.service"],
        revision=labels["io.edgefleet.revision"],
        version=labels["io.edgefleet.version"],
        state=state,
        exit_code=exit_code,
        restarts=meta.get("restarts", 0),
        image=None,
        started_at=datetime.fromtimestamp(meta["started"], UTC) if meta.get("started") else None,
        addresses=["127.0.0.1"],
        error=meta.get("error"),
        inputs=labels.get(LABEL_INPUTS, ""),
    )
