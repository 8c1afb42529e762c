"""Update locks: a workload defers upgrades of its job on this device.

A workload takes its job's lock with ``POST $EDGEFLEET_DATA_URL/lock`` and
releases it with ``DELETE`` (the URL carries the job's token, so a workload
can only lock its own job), or, in a container, by creating the file
``$EDGEFLEET_LOCK_FILE`` (``/run/edgefleet/lock/updates.lock``, as balena's
``/tmp/balena/updates.lock``) and deleting it: the directory is the job's own
(``locks/JOB/`` in the state dir), mounted into that job's containers only. While the
lock is held, an upgrade of the job waits, at most the job's
``rollout.lock_timeout`` seconds from when it started waiting
(:data:`DEFAULT_TIMEOUT` for a job without rollout settings); then it goes
ahead anyway. An operator's override (``locks_overridden_at`` in the
assignment) releases every lock taken before it.

Held locks are kept in ``locks.json`` in the state dir: a workload holding
one keeps holding it across an agent restart.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from edgefleet.agent.state import StateDir
from edgefleet.wire.workload import JobAssignment

FILE = "locks.json"
LOCK_FILE = "updates.lock"
DEFAULT_TIMEOUT = 600.0


class LocksFile(BaseModel):
    held: dict[str, datetime] = Field(default_factory=dict, description="job -> taken at")


class LockState(BaseModel):
    """What ``GET``/``POST``/``DELETE {url}/lock`` answer."""

    job: str
    held: bool
    since: datetime | None = None


class UpdateLocks:
    def __init__(self, state: StateDir, default_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.state = state
        self.default_timeout = default_timeout
        try:
            self._file = LocksFile.model_validate(state.load_json(FILE, {}))
        except ValidationError:
            self._file = LocksFile()
        # job -> when an upgrade began waiting (monotonic, and wall clock for the message)
        self._waiting: dict[str, tuple[float, datetime]] = {}

    def take(self, job_id: str) -> LockState:
        if job_id not in self._file.held:
            self._file.held[job_id] = datetime.now(UTC)
            self._save()
        return self.get(job_id)

    def release(self, job_id: str) -> LockState:
        if self._file.held.pop(job_id, None) is not None:
            self._save()
        return self.get(job_id)

    def get(self, job_id: str) -> LockState:
        since = self._since(job_id)
        return LockState(job=job_id, held=since is not None, since=since)

    def dir_for(self, job_id: str) -> Path:
        """The job's lock directory, writable by its containers whatever their user."""
        path = self.state.root / "locks" / job_id
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o1777)
        return path

    def _since(self, job_id: str) -> datetime | None:
        """When the job's lock was taken (the API's, or the lock file's), or None."""
        taken = [self._file.held[job_id]] if job_id in self._file.held else []
        with contextlib.suppress(FileNotFoundError):
            mtime = (self.state.root / "locks" / job_id / LOCK_FILE).stat().st_mtime
            taken.append(datetime.fromtimestamp(mtime, UTC))
        return min(taken) if taken else None

    def forget(self, job_id: str) -> None:
        """The job left the device: its lock, lock directory and wait go with it."""
        self._waiting.pop(job_id, None)
        self.release(job_id)
        shutil.rmtree(self.state.root / "locks" / job_id, ignore_errors=True)

    def gate(self, assignment: JobAssignment, now: float | None = None) -> str | None:
        """Why a change of this job must wait now, or None to go ahead."""
        job_id = assignment.job_id
        since = self._since(job_id)
        overridden = assignment.locks_overridden_at
        if since is None or (overridden is not None and since <= overridden):
            self._waiting.pop(job_id, None)
            return None
        now = time.monotonic() if now is None else now
        began, began_at = self._waiting.setdefault(job_id, (now, datetime.now(UTC)))
        timeout = (
            assignment.lock_timeout if assignment.lock_timeout is not None else self.default_timeout
        )
        if now - began >= timeout:
            self._waiting.pop(job_id, None)
            return None
        until = began_at + timedelta(seconds=timeout)
        return (
            f"waiting for update lock held since {_iso(since)} (until {_iso(until)} at the latest)"
        )

    def done_waiting(self, job_id: str) -> None:
        self._waiting.pop(job_id, None)

    def _save(self) -> None:
        self.state.save_json(FILE, self._file.model_dump(mode="json"))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
