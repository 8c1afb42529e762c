"""The datasets as the running agent knows them.

:meth:`Catalog.refresh` is called on a timer: it stats the registry and every
declared file, and re-reads only what changed (a new modification time or size),
so an owner's ``datasets add``, an edit of the file or a growing CSV show up
within one tick without a restart. What it reports is schema, rounded size and
policy; the values are read only by :meth:`Catalog.values`, for one computation.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from edgefleet.agent.datasets import registry
from edgefleet.agent.datasets.ledger import DatasetLedger, LedgerError, LedgerFile
from edgefleet.agent.datasets.registry import DatasetSpec, RegistryError
from edgefleet.agent.datasets.sources import DatasetError, open_source
from edgefleet.agent.datasets.sources.base import approximate
from edgefleet.wire.messages import DatasetInfo, DatasetPrivacy

if TYPE_CHECKING:
    from edgefleet.fed.messages import Task

log = logging.getLogger("edgefleet.agent.datasets")

Stamp = tuple[int, int] | None


def _stamp(path: Path | str | None) -> Stamp:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class Catalog:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.specs: dict[str, DatasetSpec] = {}
        self.infos: list[DatasetInfo] = []
        self._registry_stamp: Stamp | bool = False  # False: never read
        self._described: dict[str, tuple[str, Stamp, DatasetInfo]] = {}
        self._ledger: dict[str, DatasetLedger] = {}
        self._ledger_stamp: Stamp | bool = False

    def spec(self, name: str) -> DatasetSpec | None:
        return self.specs.get(name)

    def idle(self) -> bool:
        """No registry and nothing known: the owner never declared a dataset here.
        One stat, cheap enough for thousands of simulated agents in one process."""
        return not self.specs and not registry.path_of(self.state_dir).exists()

    def refresh(self) -> bool:
        """Re-read the registry and changed files; True if the report changed."""
        stamp = _stamp(registry.path_of(self.state_dir))
        if stamp != self._registry_stamp:
            self._registry_stamp = stamp
            try:
                self.specs = registry.load(self.state_dir).datasets
            except RegistryError as exc:
                log.warning("%s; keeping the datasets known before", exc)
        spent = self._spent()
        infos = [
            self._describe(spec).model_copy(
                update={"privacy": _privacy(spec, spent.get(spec.name))}, deep=True
            )
            for spec in self.specs.values()
        ]
        self._described = {
            name: entry for name, entry in self._described.items() if name in self.specs
        }
        changed = infos != self.infos
        self.infos = infos
        return changed

    def _spent(self) -> dict[str, DatasetLedger]:
        """What the guard charged so far (its ledger), for the report; re-read only
        when the file changed (it can hold thousands of answered party sets)."""
        ledger = LedgerFile(self.state_dir)
        stamp = _stamp(ledger.path)
        if stamp != self._ledger_stamp:
            try:
                self._ledger = ledger.load().datasets
            except LedgerError as exc:
                log.warning("%s", exc)
                self._ledger = {}
            self._ledger_stamp = stamp
        return self._ledger

    def _describe(self, spec: DatasetSpec) -> DatasetInfo:
        key, stamp = spec.model_dump_json(), _stamp(spec.path)
        if spec.source == "stream" and spec.path:  # the buffer writes its WAL first
            key += repr(_stamp(spec.path + "-wal"))
        cached = self._described.get(spec.name)
        if cached is not None and cached[:2] == (key, stamp):
            return cached[2]
        info = DatasetInfo(
            name=spec.name,
            source=spec.source,
            allow_projects=spec.allow_projects,
            allow_ops=list(spec.allow_ops),
            min_parties=spec.min_parties,
        )
        try:
            description = open_source(spec).describe()
        except DatasetError as exc:
            info.error = str(exc)[:1000]
            log.warning("dataset %s cannot be read: %s", spec.name, info.error)
        else:
            info.columns = description.columns
            info.rows_approx = approximate(description.rows)
            info.bytes_approx = approximate(description.bytes)
        self._described[spec.name] = (key, stamp, info)
        return info

    def values(self, name: str, column: str) -> list[float]:
        """Every value of one column, read now (the file may have changed)."""
        spec = self.specs.get(name)
        if spec is None:
            raise DatasetError(f"no dataset named {name!r}")
        return open_source(spec).column(column)

    def contribution(self, task: Task, threshold: int) -> list[float]:
        """This device's vector for ``task`` (read now), with its noise share if asked."""
        spec = self.specs.get(task.dataset)
        if spec is None:
            raise DatasetError(f"no dataset named {task.dataset!r}")
        # the protocol's analytics load with the first computation, not in an idle agent
        from edgefleet.fed.analytics import layout
        from edgefleet.fed.stats import contribution

        names = layout.check(task).columns_read(task)
        return contribution(task, names, open_source(spec).rows(names), threshold)


def _privacy(spec: DatasetSpec, entry: DatasetLedger | None) -> DatasetPrivacy:
    policy = spec.privacy
    return DatasetPrivacy(
        **policy.model_dump(),
        epsilon_spent=entry.epsilon_spent if entry else 0.0,
        answered=len(entry.answers) if entry else 0,
    )
