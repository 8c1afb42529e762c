"""Which value of a variable a device sees. Pure: no I/O, unit-tested alone.

From lowest to highest precedence (a higher one replaces a lower one)::

    Compose defaults   ${VAR:-default} in the file
    job environment    POST /jobs {"environment": {...}}
    project            PUT /projects/{p}/variables/{name} {"value"}
    selector           PUT /projects/{p}/variables/{name} {"value", "selector"}
    device             PUT /devices/{id}/variables/{name} {"value"}

Among several selectors that match one device, the more specific one (more
requirements) wins; between equally specific ones, the selector that sorts
last as text wins, so the answer never depends on the order rows come back.
The first two levels are applied by Compose interpolation
(:func:`edgefleet.spec.compose.parse`) and :func:`overlay` returns the last three
merged, for the server to lay over the job's environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edgefleet.labels import LabelError, parse_selector


@dataclass(frozen=True)
class ScopedValue:
    """A project variable: ``selector`` is ``""`` for a project-wide one."""

    name: str
    value: str
    selector: str = ""


def _specificity(selector: str) -> tuple[int, str]:
    return (len(parse_selector(selector).requirements), selector)


def overlay(
    project: Iterable[ScopedValue], device: Mapping[str, str], labels: Mapping[str, str]
) -> dict[str, str]:
    """Project, then matching selectors (least specific first), then device."""
    return {name: value for name, (value, _) in explain(project, device, labels).items()}


def explain(
    project: Iterable[ScopedValue], device: Mapping[str, str], labels: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """:func:`overlay` with where each value comes from: ``project``,
    ``selector <s>`` or ``device`` (the portal shows it)."""
    merged: dict[str, tuple[str, str]] = {}
    scoped: list[ScopedValue] = []
    for item in project:
        if item.selector:
            scoped.append(item)
        else:
            merged[item.name] = (item.value, "project")
    matching: list[tuple[tuple[int, str], ScopedValue]] = []
    for item in scoped:
        try:
            if parse_selector(item.selector).matches(dict(labels)):
                matching.append((_specificity(item.selector), item))
        except LabelError:  # stored selectors were checked on the way in
            continue
    for _, item in sorted(matching, key=lambda pair: pair[0]):
        merged[item.name] = (item.value, f"selector {item.selector}")
    merged.update({name: (value, "device") for name, value in device.items()})
    return merged


def environment(job: Mapping[str, str], over: Mapping[str, str]) -> dict[str, str]:
    """What ``${VAR}`` (and Compose's ``environment: [VAR]``) reads on one device:
    variables over the job's environment."""
    return {**job, **over}


def service_environment(
    parsed: Mapping[str, str], job: Mapping[str, str], over: Mapping[str, str]
) -> dict[str, str]:
    """One service's environment: its Compose ``environment`` (already
    interpolated), then the whole job environment (as for every job), then the
    variables of the names it now has. A variable the service does not name is
    not added to it, so changing that variable leaves the service alone."""
    merged = {**parsed, **job}
    return {key: over.get(key, value) for key, value in merged.items()}
