"""Findings: what is wrong (or doubtful) in a Compose file, and where.

Validation never stops at the first problem: every check reports into one
:class:`Report` and carries on, so a user fixes a file in one round trip.
A finding names the key by its dotted path (``services.web.ports[1]``) and,
when the file came as YAML text, its line.

Errors::

    ValueError
     └── SpecInvalid      the file has at least one error; .findings has them all

:meth:`Report.invalid` is for values that may come from a variable: at upload
time (no environment yet) such a value is only a warning, because the job's
environment decides it and :func:`edgefleet.spec.compose.parse` checks it
again at deploy time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Path = tuple[str | int, ...]
"""A key path: mapping keys and list indexes, from the top of the file."""

FROM_VARIABLE = " (the value comes from a variable, so it is checked again at deploy time)"


def format_path(path: Path) -> str:
    """``("services", "web", "ports", 1)`` -> ``services.web.ports[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True)
class Finding:
    """One problem in a spec: an ``error`` refuses the file, a ``warning`` does not."""

    level: Literal["error", "warning"]
    key: str
    line: int | None
    message: str
    column: int | None = None
    """Only where it says more than the line: YAML syntax errors."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "level": self.level,
            "key": self.key,
            "line": self.line,
            "message": self.message,
        }
        if self.column is not None:
            out["column"] = self.column
        return out

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


class SpecInvalid(ValueError):
    """The spec has errors; ``findings`` holds every error and warning, in file order."""

    def __init__(self, findings: Iterable[Finding]) -> None:
        self.findings = list(findings)
        first = next((f for f in self.findings if f.level == "error"), None)
        super().__init__(str(first) if first else "invalid application spec")

    def __reduce__(self) -> tuple[type[SpecInvalid], tuple[list[Finding]]]:
        """Pickled with its findings: it crosses from a worker process."""
        return (type(self), (self.findings,))


class Report:
    """Collects findings, and knows the line of every key path and which
    string values held a variable (``tainted``)."""

    def __init__(
        self, lines: Mapping[Path, int] | None = None, *, upload: bool = True, builds: bool = False
    ) -> None:
        self.lines: dict[Path, int] = dict(lines or {})
        self.upload = upload
        self.builds = builds
        """``build:`` is accepted: the version carries a build context (spec/build.py)."""
        self.tainted: set[Path] = set()
        self.unset: set[Path] = set()
        """Paths where a variable had no value at upload time (already warned about)."""
        self._findings: list[Finding] = []

    # -- reporting ---------------------------------------------------------------------

    def line(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor written in the file."""
        if not self.lines:
            return None
        for end in range(len(path), -1, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return None

    def error(self, path: Path, message: str) -> None:
        self._add("error", path, message)

    def warn(self, path: Path, message: str) -> None:
        self._add("warning", path, message)

    def invalid(self, path: Path, message: str) -> None:
        """An error in a value; only a warning at upload time if a variable made it."""
        if self.upload and self.from_variable(path):
            n = len(path)
            if not any(p[:n] == path for p in self.unset):  # else that warning says it all
                self.warn(path, message + FROM_VARIABLE)
        else:
            self.error(path, message)

    def from_variable(self, path: Path) -> bool:
        n = len(path)
        return any(t[:n] == path for t in self.tainted)

    def add(self, finding: Finding) -> None:
        """Keep a finding made elsewhere (a YAML syntax error)."""
        self._findings.append(finding)

    def _add(self, level: Literal["error", "warning"], path: Path, message: str) -> None:
        self._findings.append(Finding(level, format_path(path), self.line(path), message))

    @property
    def has_errors(self) -> bool:
        return any(f.level == "error" for f in self._findings)

    def ordered(self) -> list[Finding]:
        """Findings in file order (stable: same line keeps the order found)."""
        unique = list(dict.fromkeys(self._findings))
        return sorted(unique, key=lambda f: (f.line is None, f.line or 0))

    # -- moving subtrees (extends) ---------------------------------------------------

    def rebase(self, root: Path, grafts: Iterable[tuple[Path, Path, bool]]) -> None:
        """Rebuild the lines and taint under ``root`` from ``(source, target, subtree)``
        grafts: ``source`` (and, with ``subtree``, everything under it) now lives at
        ``target``. Later grafts win."""
        lines = dict(self.lines)
        tainted = set(self.tainted)
        n = len(root)
        self.lines = {p: v for p, v in lines.items() if p[:n] != root or p == root}
        self.tainted = {p for p in tainted if p[:n] != root}
        for source, target, subtree in grafts:
            m = len(source)
            for p, v in lines.items():
                if p == source or (subtree and p[:m] == source):
                    self.lines[target + p[m:]] = v
            for p in tainted:
                if p == source or (subtree and p[:m] == source):
                    self.tainted.add(target + p[m:])
