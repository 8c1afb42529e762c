"""Local actions waiting to be reported to the server.

    local API action --append--> local-actions.json --LocalActions--> server
                                        ^                                 |
                                        '------ LocalActionsAck(ids) -----'

Written before the action's answer, so an action made with no server in
reach is reported once it is back (after an agent restart too). Bounded:
past ``limit`` the oldest are dropped (the count is kept and reported in the
local status), so an owner scripting restarts cannot fill the disk.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from edgefleet.agent.state import StateDir
from edgefleet.wire.local import LocalAction, LocalActionKind

FILE = "local-actions.json"


class _Log(BaseModel):
    pending: list[LocalAction] = Field(default_factory=list)
    dropped: int = 0


class Journal:
    def __init__(self, state: StateDir, limit: int) -> None:
        self.state = state
        self.limit = limit
        self._log = _Log.model_validate(state.load_json(FILE, {}))

    def record(
        self, action: LocalActionKind, job_id: str, service: str | None, detail: str = ""
    ) -> LocalAction:
        entry = LocalAction(
            id=uuid.uuid4().hex, action=action, job_id=job_id, service=service, detail=detail
        )
        self._log.pending.append(entry)
        excess = len(self._log.pending) - self.limit
        if excess > 0:
            del self._log.pending[:excess]
            self._log.dropped += excess
        self._save()
        return entry

    def pending(self, limit: int = 200) -> list[LocalAction]:
        return list(self._log.pending[:limit])

    @property
    def dropped(self) -> int:
        return self._log.dropped

    def acknowledged(self, ids: list[str]) -> None:
        done = set(ids)
        kept = [a for a in self._log.pending if a.id not in done]
        if len(kept) != len(self._log.pending):
            self._log.pending = kept
            self._save()

    def _save(self) -> None:
        self.state.save_json(FILE, self._log.model_dump(mode="json"))
