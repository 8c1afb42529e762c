"""Typed reads of raw Compose values, reporting a finding instead of raising.

Each reader returns the value in its normalized type, or ``None`` after
reporting why it could not (via :meth:`Report.invalid`, so a value that came
from a variable is only a warning at upload time). Callers then leave the
field at its default and carry on checking the rest of the file.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from edgefleet.spec import units
from edgefleet.spec.findings import Path, Report

T = TypeVar("T")


def convert(report: Report, value: object, path: Path, parse: Callable[[Any], T]) -> T | None:
    """Run a :mod:`units` parser; its ValueError becomes a finding at ``path``."""
    try:
        return parse(value)
    except ValueError as exc:
        report.invalid(path, str(exc))
        return None


def kind(value: object) -> str:
    """A value's type in the words of YAML, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def text(report: Report, value: object, path: Path, *, numbers: bool = False) -> str | None:
    """A string; with ``numbers``, a number is written as text (``user: 1000``)."""
    if isinstance(value, str):
        return value
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return units.scalar_text(value)
    report.invalid(path, f"expected a string, not {kind(value)}")
    return None


def mapping(report: Report, value: object, path: Path, *, nullable: bool = True) -> dict[str, Any]:
    """A mapping; ``null`` (a key with nothing under it) reads as empty."""
    if isinstance(value, dict):
        return value
    if value is None and nullable:
        return {}
    report.invalid(path, f"expected a mapping, not {kind(value)}")
    return {}


def string_list(
    report: Report, value: object, path: Path, *, single: bool = True, numbers: bool = False
) -> list[str] | None:
    """A list of strings; with ``single``, one string is a list of one."""
    if isinstance(value, str) and single:
        return [value]
    if not isinstance(value, list):
        report.invalid(path, f"expected a list of strings, not {kind(value)}")
        return None
    out: list[str] = []
    for i, item in enumerate(value):
        got = text(report, item, (*path, i), numbers=numbers)
        if got is not None:
            out.append(got)
    return out


def pairs(
    report: Report, value: object, path: Path, *, separator: str = "="
) -> list[tuple[str, str | None, Path]]:
    """``environment``-style values: a map, or a list of ``K=V`` / ``K``.

    Returns ``(key, value or None, path)``; ``None`` means "no value given"."""
    out: list[tuple[str, str | None, Path]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            item_path = (*path, key)
            if item is None:
                out.append((key, None, item_path))
            elif isinstance(item, str | int | float | bool):
                out.append((key, units.scalar_text(item), item_path))
            else:
                report.invalid(item_path, f"expected a string, number or boolean, not {kind(item)}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            item_path = (*path, i)
            if not isinstance(item, str):
                report.invalid(item_path, f"expected 'KEY{separator}VALUE', not {kind(item)}")
                continue
            key, sep, rest = item.partition(separator)
            if not key:
                report.invalid(item_path, f"{item!r} has no name before '{separator}'")
                continue
            out.append((key, rest if sep else None, item_path))
    elif value is not None:
        report.invalid(
            path, f"expected a mapping or a list of 'KEY{separator}VALUE', not {kind(value)}"
        )
    return out


def string_map(report: Report, value: object, path: Path) -> dict[str, str]:
    """Labels and sysctls: like :func:`pairs`, a missing value is an empty string."""
    return {key: item or "" for key, item, _ in pairs(report, value, path)}


def check_keys(
    report: Report,
    value: Mapping[str, Any],
    path: Path,
    allowed: Collection[str],
    *,
    extensions: bool = True,
) -> None:
    """Report every key not in ``allowed``, suggesting the closest one."""
    for key in value:
        if key in allowed or (extensions and key.startswith("x-")):
            continue
        report.error((*path, key), unknown_key_message(key, allowed, extensions=extensions))


def unknown_key_message(key: str, allowed: Collection[str], *, extensions: bool = True) -> str:
    close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    keep = " (or rename it x-... to keep it as an extension field)" if extensions else ""
    known = f". Known keys here: {', '.join(sorted(allowed))}" if len(allowed) <= 12 else ""
    return f"unknown key; remove it{keep}{known}"
