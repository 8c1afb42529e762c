"""Services the device's owner stopped on the device: kept stopped.

    agent stop JOB SERVICE  -> hold (job, service, revision)   local/holds.json
    agent start ...          -> release
    a new revision arrives   -> the hold no longer applies (dropped when seen)

The change queue asks :meth:`Holds.held` before it recreates a missing
service (agent/jobs.py), and a job's status shows the held services as held
locally rather than failed. Persisted, so a held service stays stopped across
an agent restart.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from edgefleet.agent.state import StateDir

FILE = "local-holds.json"


class _Book(BaseModel):
    jobs: dict[str, dict[str, str]] = Field(default_factory=dict)  # job -> service -> revision


class Holds:
    def __init__(self, state: StateDir) -> None:
        self.state = state
        self._book = _Book.model_validate(state.load_json(FILE, {}))

    def hold(self, job_id: str, service: str, revision: str) -> None:
        self._book.jobs.setdefault(job_id, {})[service] = revision
        self._save()

    def release(self, job_id: str, service: str) -> bool:
        """Whether there was a hold to release."""
        services = self._book.jobs.get(job_id, {})
        found = services.pop(service, None) is not None
        if not services:
            self._book.jobs.pop(job_id, None)
        if found:
            self._save()
        return found

    def held(self, job_id: str, revision: str) -> set[str]:
        """The services of ``job_id`` held at ``revision``; holds made at
        another revision are over (a new revision arrived) and forgotten."""
        services = self._book.jobs.get(job_id)
        if not services:
            return set()
        stale = [s for s, r in services.items() if r != revision]
        if stale:
            for service in stale:
                services.pop(service)
            if not services:
                self._book.jobs.pop(job_id)
            self._save()
        return set(services)

    def forget_job(self, job_id: str) -> None:
        if self._book.jobs.pop(job_id, None) is not None:
            self._save()

    def _save(self) -> None:
        self.state.save_json(FILE, self._book.model_dump(mode="json"))
