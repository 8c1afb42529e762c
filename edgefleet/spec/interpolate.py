"""Variable interpolation with Compose's syntax and meaning.

``${VAR}`` and ``$VAR``; ``${VAR:-default}`` (unset or empty) and
``${VAR-default}`` (unset); ``${VAR:?message}`` and ``${VAR?message}``
(required); ``${VAR:+alt}`` and ``${VAR+alt}`` (replacement when set);
``$$`` is a literal ``$``. Defaults may hold variables themselves.

Variables come only from the environment passed in (a job's environment),
never from the server's own process environment: the server must not leak its
settings into workloads. Without an environment (upload time) every variable
is unset: defaults apply, and anything that would need a value is a warning,
since the job supplies it later.

Every string value is interpolated, keys are not; ``x-*`` extension fields
other than edgefleet's own are skipped, as nothing reads them. Paths whose
string held a variable are recorded in :attr:`Report.tainted`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from edgefleet.spec.findings import Path, Report

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")
OWN_EXTENSIONS = frozenset({"x-edgefleet", "x-edgefleet-runtime"})


class _Invalid(Exception):
    """An interpolation that Compose would refuse to read."""


class Interpolator:
    def __init__(self, report: Report, environment: Mapping[str, str] | None) -> None:
        self.report = report
        self.environment = environment

    def tree(self, value: Any, path: Path = ()) -> Any:
        """A copy of ``value`` with every string interpolated."""
        if isinstance(value, str):
            return self.string(value, path)
        if isinstance(value, list):
            return [self.tree(item, (*path, i)) for i, item in enumerate(value)]
        if isinstance(value, dict):
            # Extension fields of the file and of a service are left alone (labels
            # or environment variables named x-... are values like any other).
            extensible = not path or (len(path) == 2 and path[0] == "services")
            return {
                key: (
                    item
                    if extensible and key.startswith("x-") and key not in OWN_EXTENSIONS
                    else self.tree(item, (*path, key))
                )
                for key, item in value.items()
            }
        return value

    def string(self, text: str, path: Path) -> str:
        if "$" not in text:
            return text
        try:
            result, used = self._expand(text, path)
        except _Invalid as exc:
            self.report.error(
                path,
                f"invalid interpolation in {text!r}: {exc}; write $$ for a literal $",
            )
            return text
        if used:
            self.report.tainted.add(path)
        return result

    def _expand(self, text: str, path: Path) -> tuple[str, bool]:
        out: list[str] = []
        used = False
        i = 0
        while i < len(text):
            char = text[i]
            if char != "$":
                out.append(char)
                i += 1
                continue
            after = text[i + 1 : i + 2]
            if after == "$":
                out.append("$")
                i += 2
            elif after == "{":
                end = _closing_brace(text, i + 2)
                out.append(self._braced(text[i + 2 : end], path))
                used = True
                i = end + 1
            else:
                match = _NAME.match(text, i + 1)
                if match is None:
                    raise _Invalid(f"'$' at position {i} is not followed by a variable name")
                out.append(self._lookup(match.group(), path, None, None))
                used = True
                i = match.end()
        return "".join(out), used

    def _braced(self, body: str, path: Path) -> str:
        match = _NAME.match(body)
        if match is None:
            raise _Invalid(f"'${{{body}}}' does not start with a variable name")
        name, rest = match.group(), body[match.end() :]
        if not rest:
            return self._lookup(name, path, None, None)
        operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
        if operator is None:
            raise _Invalid(f"unknown operator after ${{{name}")
        return self._lookup(name, path, operator, rest[len(operator) :])

    def _lookup(self, name: str, path: Path, operator: str | None, argument: str | None) -> str:
        env = self.environment
        value = env.get(name) if env is not None else None
        present = value is not None and (value != "" or operator not in (":-", ":?", ":+"))
        arg = argument or ""
        if operator in (":-", "-"):
            return value if present and value is not None else self._expand(arg, path)[0]
        if operator in (":+", "+"):
            return self._expand(arg, path)[0] if present else ""
        if operator in (":?", "?"):
            if present and value is not None:
                return value
            reason = f": {self._expand(arg, path)[0]}" if arg else ""
            if env is None:
                self.report.unset.add(path)
                self.report.warn(path, f"variable {name} is required at deploy time{reason}")
            else:
                self.report.error(
                    path, f"variable {name} is required{reason}; set it in the job's environment"
                )
            return ""
        if value is not None:
            return value
        if env is None:
            self.report.unset.add(path)
            self.report.warn(
                path,
                f"variable {name} has no default: set {name} in the job's environment, "
                "or it becomes an empty string",
            )
        else:
            self.report.warn(
                path, f"variable {name} is not set in the job's environment; using an empty string"
            )
        return ""


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing a ``${`` whose body starts at ``start``."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise _Invalid("'${' is never closed with '}'")


def interpolate(
    data: dict[str, Any], report: Report, environment: Mapping[str, str] | None
) -> dict[str, Any]:
    """Interpolate every string value of a Compose document (keys are left alone)."""
    result: dict[str, Any] = Interpolator(report, environment).tree(data)
    return result
