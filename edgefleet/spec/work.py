"""Compose parsing as the server runs it in worker processes.

Module-level functions of picklable arguments and results, in a module that
imports only ``edgefleet.spec``, so a worker process starts light. A worker
process, not a thread: parsing is pure Python and would hold the GIL, and
every hop of the event loop (a health check, a heartbeat) would wait for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from edgefleet.spec import compose
from edgefleet.spec.findings import Finding
from edgefleet.spec.loader import Budget, budget, load_with_lines
from edgefleet.spec.model import AppSpec

T = TypeVar("T")


def within(limits: Budget, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` with ``limits`` as the Compose budget."""
    with budget(limits):
        return fn(*args)


def check(
    source: str | dict[str, Any], builds: bool = False
) -> tuple[dict[str, Any], list[Finding]]:
    """Upload: the raw data and the warnings; raises SpecInvalid. ``builds``:
    the version comes with a build context, so ``build:`` is accepted."""
    raw = compose.load_yaml(source) if isinstance(source, str) else source
    _, warnings = compose.parse(source, builds=builds)
    return raw, warnings


def validate(source: str | dict[str, Any]) -> tuple[list[Finding], list[str]]:
    """Every finding and the services; raises SpecInvalid if the text cannot
    even be read (nothing more to check then)."""
    if isinstance(source, str):
        load_with_lines(source)
    findings = compose.validate(source)
    if any(f.level == "error" for f in findings):
        return findings, []
    spec, _ = compose.parse(source)
    return findings, sorted(spec.services)


def findings(source: str) -> list[Finding]:
    """Every finding, never raising (the portal's live check)."""
    return compose.validate(source)


def resolve(
    source: str | dict[str, Any], environment: Mapping[str, str], builds: bool = False
) -> AppSpec:
    """Deploy time: the spec with the job's environment; raises SpecInvalid."""
    spec, _ = compose.parse(source, environment=environment, builds=builds)
    return spec
