"""A service while it is being read.

Each service key has a handler (``Handler``) that reads its raw value and
writes model fields into a :class:`Draft`. References to other parts of the
file (named volumes, networks, other services) are only collected here: they
are checked once every service has been read, in :mod:`edgefleet.spec.compose`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgefleet.spec.findings import Path, Report


@dataclass
class Draft:
    name: str
    path: Path
    report: Report
    environment: Mapping[str, str] | None
    """The job's environment at deploy time; ``None`` at upload time."""
    fields: dict[str, Any] = field(default_factory=dict)
    volume_refs: list[tuple[str, Path]] = field(default_factory=list)
    network_refs: list[tuple[str, Path]] = field(default_factory=list)
    file_refs: list[tuple[str, str, Path]] = field(default_factory=list)
    """(``secrets`` or ``configs``, name, path): checked against the top level."""
    depends_paths: dict[str, Path] = field(default_factory=dict)
    links: list[tuple[str, str | None, Path]] = field(default_factory=list)
    deploy_limits: dict[str, tuple[Any, Path]] = field(default_factory=dict)
    deploy_restart: tuple[str, int | None, Path] | None = None

    def set(self, name: str, value: Any) -> None:
        """Set a model field, unless reading the value failed (``None``)."""
        if value is not None:
            self.fields[name] = value

    def extend(self, name: str, items: list[Any]) -> None:
        self.fields.setdefault(name, []).extend(items)

    def at(self, *keys: str | int) -> Path:
        return (*self.path, *keys)


Handler = Callable[[Draft, Any, Path], None]
"""Reads one service key: ``handler(draft, raw_value, path_of_the_key)``."""
