"""Does a device have what its project declares? Pure: rules and facts in,
the first missing peripheral out.

A declared peripheral matches a reported one by kind (``camera``), name
(``video0``) or path (``/dev/video0``), so a rule can be as loose or as
exact as the experiment needs."""

from __future__ import annotations

from dataclasses import dataclass

from edgefleet.labels import Selector
from edgefleet.wire.messages import Peripheral


@dataclass(frozen=True)
class Rule:
    selector: Selector
    peripherals: tuple[str, ...]


def has(reported: list[Peripheral], wanted: str) -> bool:
    return any(wanted in (p.kind, p.name, p.path) for p in reported)


def missing(rules: list[Rule], labels: dict[str, str], reported: list[Peripheral]) -> str | None:
    """Why the device is not ready (a peripheral missing), or ``None``."""
    for rule in rules:
        if not rule.selector.matches(labels):
            continue
        for wanted in rule.peripherals:
            if not has(reported, wanted):
                where = str(rule.selector) or "every device"
                return f"missing peripheral {wanted} (required for {where})"
    return None
