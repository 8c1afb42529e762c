"""Last known good: per job, the last assignment whose revision ran healthy.

Kept in ``last_good.json`` beside ``desired.json`` in the state dir, written
atomically, so it survives agent restarts and reboots with no server in
reach. When the desired revision fails and nothing of the job is running
any more (a reboot removed the containers, or the engine was wiped), the
agent starts this one instead of leaving the device empty; it keeps trying
the desired revision with backoff, and forgets the old one when the desired
revision succeeds (it becomes the new last good) or the job is removed.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field, ValidationError

from edgefleet.agent.changes.plan import revision_of
from edgefleet.agent.state import StateDir
from edgefleet.wire.workload import JobAssignment

log = logging.getLogger(__name__)

FILE = "last_good.json"


class LastGoodFile(BaseModel):
    jobs: dict[str, JobAssignment] = Field(default_factory=dict)


class LastGood:
    def __init__(self, state: StateDir) -> None:
        self.state = state
        try:
            self._file = LastGoodFile.model_validate(state.load_json(FILE, {}))
        except ValidationError as exc:
            log.warning("ignoring unreadable %s: %s", FILE, exc)
            self._file = LastGoodFile()

    def get(self, job_id: str) -> JobAssignment | None:
        return self._file.jobs.get(job_id)

    def revision(self, job_id: str) -> str | None:
        found = self._file.jobs.get(job_id)
        return revision_of(found) if found is not None else None

    def record(self, assignment: JobAssignment) -> None:
        """``assignment`` ran healthy: it is the one to come back to."""
        if self.revision(assignment.job_id) == revision_of(assignment):
            return
        self._file.jobs[assignment.job_id] = assignment
        self._save()

    def forget(self, job_id: str) -> None:
        if self._file.jobs.pop(job_id, None) is not None:
            self._save()

    def _save(self) -> None:
        self.state.save_json(FILE, self._file.model_dump(mode="json"))
