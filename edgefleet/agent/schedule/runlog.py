"""The device's own record of periodic runs, kept until the server has them.

One JSON file in the state dir (``schedule-runs.json``), replaced atomically
on every change (a crash leaves the old file or the new one):

- ``pending``: runs the server has not acknowledged, oldest first, at most
  ``--schedule-log-max``; past it the oldest are dropped and counted in
  ``dropped`` (a device offline for months keeps its newest runs);
- ``last``: the newest run of each job (what ``edgefleet agent`` can show);
- ``fired``: when each job last fired, so a restart does not fire it twice;
- ``running``: runs started and not finished; after an agent crash or
  restart they are settled from their containers (see ``runner.recover``).

Runs leave ``pending`` only when the server acknowledges their ids, so a
run made while the server was down is reported after it comes back, once.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from edgefleet.agent.state import StateDir
from edgefleet.wire.schedule import RunRecord

FILE = "schedule-runs.json"


class _Book(BaseModel):
    pending: list[RunRecord] = Field(default_factory=list)
    running: dict[str, RunRecord] = Field(default_factory=dict)
    last: dict[str, RunRecord] = Field(default_factory=dict)
    fired: dict[str, datetime] = Field(default_factory=dict)
    dropped: int = 0


class RunLog:
    def __init__(self, state: StateDir, limit: int) -> None:
        self.state = state
        self.limit = limit
        self.path = state.root / FILE
        try:
            self._book = _Book.model_validate_json(self.path.read_bytes())
        except FileNotFoundError:
            self._book = _Book()
        except ValueError:
            # A file we cannot read is kept aside, not silently overwritten.
            self.path.replace(self.path.with_suffix(".corrupt"))
            self._book = _Book()

    @property
    def dropped(self) -> int:
        return self._book.dropped

    def fired(self) -> dict[str, datetime]:
        return dict(self._book.fired)

    def last(self, job: str) -> RunRecord | None:
        return self._book.last.get(job)

    def pending(self, limit: int) -> list[RunRecord]:
        return self._book.pending[:limit]

    def begin(self, run: RunRecord) -> None:
        """A run starts: written down before its containers exist."""
        self._book.running[run.id] = run
        self._save()

    def interrupted(self) -> list[RunRecord]:
        """Runs begun by an earlier agent process and never finished."""
        return list(self._book.running.values())

    def add(self, run: RunRecord) -> None:
        book = self._book
        book.running.pop(run.id, None)
        book.pending.append(run)
        excess = len(book.pending) - self.limit
        if excess > 0:
            del book.pending[:excess]
            book.dropped += excess
        book.last[run.job] = run
        book.fired[run.job] = max(run.scheduled, book.fired.get(run.job, run.scheduled))
        self._save()

    def ack(self, ids: list[str]) -> int:
        """Forget acknowledged runs; returns how many were pending."""
        done = set(ids)
        before = len(self._book.pending)
        self._book.pending = [r for r in self._book.pending if r.id not in done]
        if len(self._book.pending) != before:
            self._save()
        return before - len(self._book.pending)

    def forget_jobs(self, keep: set[str]) -> None:
        """Jobs no longer on this device: drop their ``last`` and ``fired``
        (their pending runs still go to the server)."""
        book = self._book
        gone = (set(book.last) | set(book.fired)) - keep
        if gone:
            for job in gone:
                book.last.pop(job, None)
                book.fired.pop(job, None)
            self._save()

    def _save(self) -> None:
        data = self._book.model_dump_json().encode()
        self.state.write(self.path, data)
