"""What each dataset has already answered: ``<state-dir>/privacy.json`` (0600).

Written before a device contributes (so a crash can only over-count), read on
every invitation, never reset by a restart or by redeclaring the dataset (the
entry is keyed by the dataset's name and outlives ``datasets rm``). Holds no
value: computation ids, party sets, times and the epsilon spent.
"""

from __future__ import annotations

import threading
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgefleet.agent.state import atomic_write

LEDGER = "privacy.json"
MAX_ANSWERS = 2_000  # per dataset; the oldest are forgotten first (documented limit)


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    computation: str
    key: str = Field(description="what was asked, without who: dataset, filter, groups")
    parties: list[str] = Field(description="invited; narrowed to the survivors at unmask")
    time: float


class DatasetLedger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queries: list[float] = Field(default_factory=list, description="when each was answered")
    epsilon_spent: float = 0.0
    delta_spent: float = 0.0
    answers: list[Answer] = Field(default_factory=list)


class Ledger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    datasets: dict[str, DatasetLedger] = Field(default_factory=dict)


class LedgerFile:
    """The file and a lock: the agent's event loop and its worker threads share it."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LEDGER
        self.lock = threading.Lock()

    def load(self) -> Ledger:
        try:
            return Ledger.model_validate_json(self.path.read_bytes())
        except FileNotFoundError:
            return Ledger()
        except ValidationError as exc:
            # Refuse rather than start from zero: a reset ledger would re-open every budget.
            raise LedgerError(f"{self.path} is damaged; no computation until it is fixed") from exc

    def save(self, ledger: Ledger) -> None:
        for entry in ledger.datasets.values():
            del entry.answers[:-MAX_ANSWERS]
        atomic_write(self.path, ledger.model_dump_json().encode(), 0o600)


class LedgerError(Exception):
    """The ledger cannot be read; every computation is declined until it can."""
