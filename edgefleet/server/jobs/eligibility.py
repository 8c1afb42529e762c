"""Can this device run this application? Pure: spec and facts in, a reason out."""

from __future__ import annotations

import json
from typing import Any

from edgefleet.spec.model import AppSpec
from edgefleet.spec.policy import app_refusals
from edgefleet.wire.messages import DeviceFacts

CONTAINER_RUNTIMES = {"docker", "sim"}
PROCESS_RUNTIMES = {"process", "sim"}


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return str(n)


def facts_key(facts: dict[str, Any]) -> str:
    """Everything :func:`why_not` looks at, as a key: devices of one kind share
    it (judged once per kind), and a device whose key is unchanged (only its
    free disk moved, say) needs no new judgement."""
    resources = facts.get("resources") or {}
    relevant = {
        "runtimes": facts.get("runtimes"),
        "arch": resources.get("arch"),
        "memory": resources.get("memory"),
        "peripherals": sorted(
            (p.get("kind", ""), p.get("name", ""), p.get("path") or "")
            for p in facts.get("peripherals") or []
        ),
        "policy": facts.get("policy"),
    }
    return json.dumps(relevant, sort_keys=True, default=str)


def why_not(spec: AppSpec, facts: DeviceFacts) -> str | None:
    """``None`` if the device can run ``spec``; otherwise why not, in plain words."""
    runtimes = set(facts.runtimes)
    needs = spec.runtimes_needed()
    if "container" in needs and not runtimes & CONTAINER_RUNTIMES:
        offered = ", ".join(sorted(runtimes)) or "none"
        return f"needs a container runtime; this device offers: {offered}"
    if "process" in needs and not runtimes & PROCESS_RUNTIMES:
        if facts.policy is not None and not facts.policy.process:
            return policy_refusal(spec, facts)  # the owner's choice: say which flag
        return "needs the process runtime, which this device does not offer"
    requires = spec.requires
    if requires.runtime and not runtimes & set(requires.runtime):
        return f"requires runtime {' or '.join(requires.runtime)}; this device offers: {', '.join(sorted(runtimes)) or 'none'}"
    arch = facts.resources.arch
    if requires.arch and arch not in requires.arch:
        return f"requires arch {' or '.join(requires.arch)}; this device is {arch or 'unknown'}"
    if requires.memory and facts.resources.memory and facts.resources.memory < requires.memory:
        return (
            f"requires {_size(requires.memory)} of memory; this device has "
            f"{_size(facts.resources.memory)}"
        )
    present = {p.kind for p in facts.peripherals} | {p.name for p in facts.peripherals}
    missing = [p for p in requires.peripherals if p not in present]
    if missing:
        return f"requires peripheral {', '.join(missing)}, which this device does not have"
    return policy_refusal(spec, facts)


def policy_refusal(spec: AppSpec, facts: DeviceFacts) -> str | None:
    """What the device's owner does not allow (process runtime, privileged, host
    paths, capabilities, external volumes, peripherals, limits...), from the
    policy its agent reports; an agent too old to report one is left to refuse
    by itself."""
    if facts.policy is None:
        return None
    found = app_refusals(spec, facts.policy)
    return "; ".join(found) if found else None
