"""Files of an upgrade under ``<state-dir>/upgrade/`` and ``versions/``.

Both the running agent and the watchdog (a separate, older process) read and
write them, so they are small pydantic documents written atomically.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError

from edgefleet.agent.state import atomic_write
from edgefleet.wire.upgrade import UpgradeReport, valid_version


class Pending(BaseModel):
    """A switch on trial: what to go back to if the new version does not prove itself."""

    version: str
    from_version: str
    previous_target: str | None  # where `current` pointed before (None: no venv of ours)
    previous_python: str
    argv: list[str]
    deadline: float  # seconds from the switch
    switched_at: float  # time.time()
    agent_pid: int
    supervised: bool  # a service manager restarts the agent when it exits
    attempt: str = ""  # the server's rollout id


class Paths:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir
        self.dir = state_dir / "upgrade"
        self.versions = state_dir / "versions"
        self.current = state_dir / "current"
        self.pending = self.dir / "pending.json"
        self.report = self.dir / "report.json"
        self.downloads = self.dir / "downloads"

    def version_dir(self, version: str) -> Path:
        if not valid_version(version):  # never a path outside versions/
            raise ValueError(f"invalid version {version!r}")
        return self.versions / version

    def python_of(self, venv: Path) -> Path:
        return venv / "bin" / "python"


def read_pending(paths: Paths) -> Pending | None:
    try:
        return Pending.model_validate_json(paths.pending.read_bytes())
    except (OSError, ValidationError):
        return None


def write_pending(paths: Paths, pending: Pending) -> None:
    atomic_write(paths.pending, pending.model_dump_json().encode())


def clear_pending(paths: Paths) -> None:
    paths.pending.unlink(missing_ok=True)


def read_report(state_dir: Path) -> UpgradeReport | None:
    try:
        return UpgradeReport.model_validate_json(
            (state_dir / "upgrade" / "report.json").read_bytes()
        )
    except (OSError, ValidationError):
        return None


def write_report(paths: Paths, report: UpgradeReport) -> None:
    if report.at is None:
        report.at = datetime.now(UTC)
    atomic_write(paths.report, report.model_dump_json().encode(), mode=0o644)


def point_current(paths: Paths, target: str | None) -> None:
    """Atomically make ``current`` point at ``target`` (or remove it)."""
    if target is None:
        paths.current.unlink(missing_ok=True)
        return
    tmp = paths.root / ".current.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, paths.current)


def current_target(paths: Paths) -> str | None:
    try:
        return os.readlink(paths.current)
    except OSError:
        return None
