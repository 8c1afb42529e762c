"""``extends`` within one file: a service starts from another's settings.

Merged like Compose does it: the extending service's scalars win; mappings
merge key by key (``environment``, ``labels`` and other ``KEY=VALUE`` lists
count as mappings); ``volumes`` merge by container path; ``command`` and
``entrypoint`` are replaced; other lists are concatenated without duplicates.
``extends: {file: ...}`` is refused: devices and the server have only this file.

Findings keep pointing at the line each merged value was written on: every
merged value records where it came from, and :meth:`Report.rebase` moves the
lines (and the record of which values held a variable) to match.
"""

from __future__ import annotations

import json
from typing import Any

from edgefleet.spec import keys, values
from edgefleet.spec.findings import Path, Report

_REPLACED = frozenset({"command", "entrypoint"})
_KEYED_LISTS = {
    "environment": "=",
    "labels": "=",
    "annotations": "=",
    "sysctls": "=",
    "extra_hosts": None,
    "depends_on": "",
    "networks": "",
}
"""Lists that are mappings in another spelling, with their separator
(``""``: a list of names, ``None``: ``=`` or ``:``)."""

Grafts = list[tuple[Path, Path, bool]]
"""``(source, target, with_subtree)``: see :meth:`Report.rebase`."""


def resolve_extends(services: dict[str, Any], report: Report) -> dict[str, Any]:
    """``services`` with every ``extends`` merged in (and removed)."""
    resolved: dict[str, Any] = {}
    active: list[str] = []

    def resolve(name: str) -> Any:
        if name in resolved:
            return resolved[name]
        raw = services[name]
        if not isinstance(raw, dict) or "extends" not in raw:
            resolved[name] = raw
            return raw
        child = {k: v for k, v in raw.items() if k != "extends"}
        resolved[name] = child
        path: Path = ("services", name, "extends")
        base_name = _base_name(report, raw["extends"], path, services)
        if base_name is None:
            return child
        if base_name in active or base_name == name:
            loop = (
                " -> ".join([*active[active.index(base_name) :], name, base_name])
                if base_name in active
                else f"{name} -> {name}"
            )
            report.error(path, f"extends loops ({loop}); remove one of these extends")
            return child
        active.append(name)
        base = resolve(base_name)
        active.pop()
        if not isinstance(base, dict):
            return child
        merged, grafts = _merge_maps(
            base, child, ("services", base_name), ("services", name), top=True
        )
        report.rebase(("services", name), grafts)
        resolved[name] = merged
        return merged

    for service in services:
        resolve(service)
    return {name: resolved[name] for name in services}


def _base_name(report: Report, value: Any, path: Path, services: dict[str, Any]) -> str | None:
    if isinstance(value, dict):
        values.check_keys(report, value, path, keys.EXTENDS_KEYS, extensions=False)
        if "file" in value:
            report.error(
                (*path, "file"),
                "extends from another file is not supported: devices and the server have only "
                "this file; copy the base service into it and extend that",
            )
            return None
        value = value.get("service")
    if not isinstance(value, str):
        report.error(
            path, "extends needs the name of a service in this file: extends: {service: NAME}"
        )
        return None
    if value not in services:
        report.error(path, f"extends service {value!r}, which is not in this file")
        return None
    return value


def _merge_maps(
    base: dict[str, Any], child: dict[str, Any], bp: Path, cp: Path, *, top: bool
) -> tuple[dict[str, Any], Grafts]:
    out: dict[str, Any] = {}
    grafts: Grafts = []
    for key in [*base, *(k for k in child if k not in base)]:
        if key not in child:
            out[key] = base[key]
            grafts.append(((*bp, key), (*cp, key), True))
            continue
        b, c = base.get(key), child[key]
        more: Grafts
        if key not in base:
            out[key], more = c, []
        elif (
            top
            and key in _KEYED_LISTS
            and isinstance(b, list | dict)
            and isinstance(c, list | dict)
        ):
            out[key], more = _merge_keyed(b, c, (*bp, key), (*cp, key), _KEYED_LISTS[key])
        elif isinstance(b, dict) and isinstance(c, dict):
            out[key], more = _merge_maps(b, c, (*bp, key), (*cp, key), top=False)
        elif top and key not in _REPLACED and isinstance(b, list) and isinstance(c, list):
            out[key], more = _merge_lists(b, c, (*bp, key), (*cp, key), by_target=key == "volumes")
        else:
            out[key], more = c, []
        grafts.append(((*cp, key), (*cp, key), not more))
        grafts.extend(more)
    return out, grafts


def _as_map(
    value: list[Any] | dict[str, Any], path: Path, separator: str | None
) -> dict[str, tuple[Any, Path]]:
    if isinstance(value, dict):
        return {k: (v, (*path, k)) for k, v in value.items()}
    found: dict[str, tuple[Any, Path]] = {}
    for i, item in enumerate(value):
        text = str(item)
        sep = separator if separator is not None else ("=" if "=" in text else ":")
        name, has, rest = text.partition(sep) if sep else (text, "", "")
        found[name] = (rest if has else None, (*path, i))
    return found


def _merge_keyed(
    b: list[Any] | dict[str, Any],
    c: list[Any] | dict[str, Any],
    bp: Path,
    cp: Path,
    separator: str | None,
) -> tuple[dict[str, Any], Grafts]:
    merged = {**_as_map(b, bp, separator), **_as_map(c, cp, separator)}
    grafts = [(source, (*cp, k), True) for k, (_, source) in merged.items()]
    return {k: v for k, (v, _) in merged.items()}, grafts


def _target(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("target"))
    parts = str(item).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _merge_lists(
    b: list[Any], c: list[Any], bp: Path, cp: Path, *, by_target: bool
) -> tuple[list[Any], Grafts]:
    by_child_target = {_target(item): j for j, item in enumerate(c)} if by_target else {}
    entries: list[tuple[Any, Path]] = []
    overridden: set[int] = set()
    for j, item in enumerate(b):
        k = by_child_target.get(_target(item)) if by_target else None
        if k is None:
            entries.append((item, (*bp, j)))
        else:
            overridden.add(k)
            entries.append((c[k], (*cp, k)))
    entries.extend((item, (*cp, j)) for j, item in enumerate(c) if j not in overridden)
    out: list[Any] = []
    grafts: Grafts = []
    seen: set[str] = set()
    for item, source in entries:
        fingerprint = json.dumps(item, sort_keys=True, default=str)
        if fingerprint not in seen:
            seen.add(fingerprint)
            grafts.append((source, (*cp, len(out)), True))
            out.append(item)
    return out, grafts
