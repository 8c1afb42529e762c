"""The owner's privacy rules against the analyst, enforced on the device before it
contributes, from what it has already answered (:mod:`.ledger`).

- **Query budget**: at most ``query_budget`` computations on the dataset per
  ``budget_window`` seconds (sliding window).
- **Differencing**: two answers over party sets that differ by only a few
  devices give away those devices' values (sum over ABC minus sum over AB is
  C). A device refuses a query whose party set differs from one it already
  answered *for the same question* (dataset, ``where``, ``group_by`` and
  groups; any op or column, because a mean and a sum over the same rows combine
  just as well) by at least one and fewer than ``min_difference`` parties
  (default: the dataset's ``min_parties``). The four sums ABC, ABD, ACD, BCD
  differ pairwise by two: refused from the second on when ``min_difference``
  >= 3. The set checked is the invited set at the invitation and the survivor
  set (U3) at unmasking, so a device that drops out of one query does not turn
  two answers into a difference either.
- **Differential privacy**: with ``dp_epsilon`` set, every query must ask for
  noise (``epsilon``), and the epsilons of all answered queries add up (basic
  composition) to at most ``dp_epsilon``; once spent, the dataset refuses. The
  Laplace mechanism spends delta = 0 (``dp_delta`` is a ceiling kept for
  mechanisms that spend some).

A budget is charged when the device joins, before it sends anything, and
refunded only if the computation ends before this device sent its masked
input (then nothing of its data can be released); once the masked input is
out, a query that fails still counts (the device cannot know what was kept).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from edgefleet.agent.datasets.ledger import Answer, DatasetLedger, LedgerError, LedgerFile
from edgefleet.agent.datasets.registry import DatasetSpec

if TYPE_CHECKING:
    from edgefleet.fed.messages import Task

EPSILON_SLACK = 1e-9
log = logging.getLogger(__name__)


def question(task: Task) -> str:
    """What is asked, whoever is asked: the key answers are compared under."""
    asked = {
        "dataset": task.dataset,
        "where": [c.model_dump(mode="json") for c in task.where],
        "group_by": task.group_by,
        "groups": list(task.groups),
    }
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


def refusal(
    spec: DatasetSpec,
    entry: DatasetLedger,
    task: Task,
    parties: Collection[str],
    now: float,
    computation: str = "",
) -> str | None:
    """Why the dataset's privacy policy refuses this query over ``parties``, or None."""
    policy = spec.privacy
    if policy.query_budget is not None:
        recent = [t for t in entry.queries if t > now - policy.budget_window]
        if len(recent) >= policy.query_budget:
            wait = min(recent) + policy.budget_window - now
            return (
                f"dataset {spec.name!r}: query budget of {policy.query_budget} per "
                f"{policy.budget_window:g} s is spent; the next is allowed in {wait:.0f} s"
            )
    if reason := differencing(spec, entry, task, parties, computation):
        return reason
    if policy.dp_epsilon is not None:
        if task.epsilon is None:
            return f"dataset {spec.name!r} answers only with differential privacy: give epsilon"
        if entry.epsilon_spent + task.epsilon > policy.dp_epsilon + EPSILON_SLACK:
            return (
                f"dataset {spec.name!r}: privacy budget spent (epsilon {entry.epsilon_spent:g} "
                f"of {policy.dp_epsilon:g} used; this query needs {task.epsilon:g})"
            )
    return None


def differencing(
    spec: DatasetSpec,
    entry: DatasetLedger,
    task: Task,
    parties: Collection[str],
    computation: str = "",
) -> str | None:
    threshold = spec.privacy.min_difference or spec.min_parties
    key, asked = question(task), set(parties)
    for answer in entry.answers:
        if answer.key != key or answer.computation == computation:
            continue
        differ = len(asked ^ set(answer.parties))
        if 0 < differ < threshold:
            return (
                f"dataset {spec.name!r}: the parties differ from those of computation "
                f"{answer.computation} by {differ} (fewer than {threshold}): refused, "
                f"the two results together could single out a device"
            )
    return None


class Guard:
    """The rules above bound to the ledger file of one agent."""

    def __init__(self, ledger: LedgerFile) -> None:
        self.ledger = ledger

    def admit(
        self, spec: DatasetSpec, task: Task, computation: str, parties: Collection[str]
    ) -> str | None:
        """Check, and if allowed charge the query (persisted before returning)."""
        now = time.time()

        def charge(entry: DatasetLedger) -> str | None:
            reason = refusal(spec, entry, task, parties, now, computation)
            if reason is None:
                window = now - spec.privacy.budget_window
                entry.queries = [t for t in entry.queries if t > window] + [now]
                entry.epsilon_spent += task.epsilon or 0.0
                answer = Answer(
                    computation=computation, key=question(task), parties=sorted(parties), time=now
                )
                entry.answers.append(answer)
            return reason

        return self._update(spec.name, charge)

    def narrow(
        self, spec: DatasetSpec, task: Task, computation: str, survivors: Collection[str]
    ) -> str | None:
        """At unmasking: the survivors are who the result covers; check them against
        every other answer and remember them instead of the invited set."""

        def remember(entry: DatasetLedger) -> str | None:
            reason = differencing(spec, entry, task, survivors, computation)
            if reason is None:
                for answer in entry.answers:
                    if answer.computation == computation:
                        answer.parties = sorted(survivors)
            return reason

        return self._update(spec.name, remember)

    def _update(self, dataset: str, change: Callable[[DatasetLedger], str | None]) -> str | None:
        """Load the ledger under its lock, let ``change`` judge (and edit) one
        dataset's entry, and save it unless ``change`` refused: a refusal leaves
        the ledger as it was. An unreadable ledger refuses, saying why."""
        with self.ledger.lock:
            try:
                ledger = self.ledger.load()
            except LedgerError as exc:
                return str(exc)
            reason = change(ledger.datasets.setdefault(dataset, DatasetLedger()))
            if reason is None:
                self.ledger.save(ledger)
        return reason

    def refund(self, dataset: str, task: Task, computation: str) -> None:
        """Undo :meth:`admit` for a computation that ended before this device sent its
        masked input: nothing computed from its data can ever be released, so the
        query counts against no budget and no party set (a failed attack must not
        drain an owner's budget or block honest queries later)."""
        with self.ledger.lock:
            try:
                ledger = self.ledger.load()
            except LedgerError as exc:  # nothing to undo from: the query stays charged
                log.warning(
                    "dataset %s: no refund for computation %s: %s", dataset, computation, exc
                )
                return
            entry = ledger.datasets.get(dataset)
            answer = (
                next((a for a in entry.answers if a.computation == computation), None)
                if entry
                else None
            )
            if entry is None or answer is None:
                return
            entry.answers.remove(answer)
            if answer.time in entry.queries:
                entry.queries.remove(answer.time)
            entry.epsilon_spent = max(0.0, entry.epsilon_spent - (task.epsilon or 0.0))
            self.ledger.save(ledger)

    def spent(self, dataset: str) -> tuple[float, int]:
        """(epsilon spent, queries answered ever) for reporting; never a value."""
        with self.ledger.lock:
            try:
                entry = self.ledger.load().datasets.get(dataset)
            except LedgerError:
                return 0.0, 0
        return (entry.epsilon_spent, len(entry.answers)) if entry else (0.0, 0)
