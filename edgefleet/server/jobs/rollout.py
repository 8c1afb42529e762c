"""A job's overall state from its devices' states. Pure.

    pending --(assigned, device working)--> deploying --(all running)--> running
       |                                       |  \\--(all exited 0)--> completed
       |                                       '----(all failed)-----> failed
       '-- cancelled / expired are set by people and the clock, never derived.

Devices that cannot run the job (requirements) are shown with their reason
but do not hold the job in ``deploying``. A device that finished trying
(an error with the old version still serving) counts as settled.
"""

from __future__ import annotations

from dataclasses import dataclass

TERMINAL = ("cancelled", "expired")
IN_PROGRESS = ("pending", "pulling", "starting")


@dataclass(frozen=True)
class DeviceView:
    state: str
    eligible: bool
    assigned: bool
    version: str | None
    error: str | None
    count: int = 1


def settled(row: DeviceView, job_version: str) -> bool:
    if row.state in IN_PROGRESS:
        return False
    rolling = row.state == "running" and row.version != job_version and not row.error
    return not rolling  # a device still rolling to the new version is not settled


def aggregate(
    current: str, rows: list[DeviceView], job_version: str, waiting_for_start: bool
) -> tuple[str, str | None]:
    """(state, error) for the job."""
    if current in TERMINAL:
        return current, None
    if waiting_for_start:
        return "pending", None
    active = [r for r in rows if r.assigned and r.eligible]
    ineligible = [r for r in rows if r.assigned and not r.eligible]
    if not active:
        # held back by a reservation (reservations/gate.py): waiting, or its window is over
        if ineligible and {r.state for r in ineligible} == {"pending"}:
            return "pending", None
        if ineligible and {r.state for r in ineligible} == {"expired"}:
            return "expired", None
        if ineligible:
            return "failed", "no targeted device can run this job (see each device's error)"
        return "pending", None
    failing = sum(r.count for r in active if r.error)
    total = sum(r.count for r in active)
    error = f"{failing} of {total} device(s) report an error" if failing else None
    if not all(settled(r, job_version) for r in active):
        return "deploying", error
    states = {r.state for r in active}
    if states <= {"running", "exited"} and "running" in states:
        return "running", error
    if states == {"exited"}:
        return "completed", error
    if states <= {"failed", "exited", "removed"}:
        return "failed", error or "the job's workloads failed on every device"
    return "deploying", error
