"""Choosing devices for a booking and finding what conflicts. Pure: facts in,
a plan out; no database, no clock (``now`` is given), unit-tested alone.

For each candidate device, in order, the first reason that applies::

    not lent      the device belongs to another project that has not lent it
                  to the booking project ("policy refuses")
    offline       the device is not connected now
    not ready     online, but missing a declared peripheral
    booked        an overlapping booking where either side is exclusive
    time share    the guest's bookings on it within the loan's rolling window
                  would pass the loan's share

Without ``count`` every candidate is wanted, so any conflict refuses the
booking. With ``count`` the plan picks that many conflict-free devices,
spread round-robin across the values of the ``spread`` label (sorted, devices
without the label last), and refuses only when too few are free.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Booking:
    """An existing booking of one device."""

    reservation: str
    project_pk: int
    start: datetime
    end: datetime
    exclusive: bool


@dataclass(frozen=True)
class Share:
    """The loan's time share: ``fraction`` of any ``window`` ending at the booking's end."""

    fraction: float
    window: timedelta


@dataclass(frozen=True)
class Candidate:
    id: str
    name: str
    labels: dict[str, str]
    online: bool
    ready_problem: str | None = None
    lent: bool = True  # owned by the booking project, or lent to it
    share: Share | None = None  # None: owned (no share applies)
    bookings: tuple[Booking, ...] = ()


@dataclass(frozen=True)
class Request:
    project_pk: int
    start: datetime
    end: datetime
    exclusive: bool
    count: int | None = None
    spread: str | None = None
    ignore: str | None = None  # a reservation being changed does not conflict with itself


@dataclass
class Plan:
    devices: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (device id, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # passed over, not needed

    @property
    def ok(self) -> bool:
        return not self.conflicts


def _overlap(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def held(
    bookings: tuple[Booking, ...], project_pk: int, since: datetime, until: datetime
) -> timedelta:
    """How long ``project_pk``'s bookings cover within [since, until)."""
    total = timedelta()
    for booking in bookings:
        if booking.project_pk != project_pk:
            continue
        start, end = max(booking.start, since), min(booking.end, until)
        if end > start:
            total += end - start
    return total


def conflict(candidate: Candidate, request: Request) -> str | None:
    """The first reason this device cannot be booked, or ``None``."""
    if not candidate.lent:
        return "policy refuses: the device's project has not lent it to this project"
    if not candidate.online:
        return "offline"
    if candidate.ready_problem:
        return f"not ready: {candidate.ready_problem}"
    others = tuple(b for b in candidate.bookings if b.reservation != request.ignore)
    for booking in others:
        if not _overlap(booking.start, booking.end, request.start, request.end):
            continue
        if booking.exclusive or request.exclusive:
            kind = "exclusively" if booking.exclusive else "shared"
            return (
                f"already booked ({kind}, reservation {booking.reservation}, "
                f"{_iso(booking.start)} to {_iso(booking.end)})"
            )
    if candidate.share is not None:
        return _over_share(candidate.share, others, request)
    return None


def _over_share(share: Share, others: tuple[Booking, ...], request: Request) -> str | None:
    """Would the guest hold the device more than its share of any window? The
    windows worth checking end at the new booking's end or at the end of one
    of its later bookings that the new one would add to."""
    mine = (*others, Booking("", request.project_pk, request.start, request.end, False))
    ends = {request.end} | {
        b.end
        for b in others
        if b.project_pk == request.project_pk and request.end < b.end < request.end + share.window
    }
    allowed = share.window * share.fraction
    for end in sorted(ends):
        used = held(mine, request.project_pk, end - share.window, end)
        if used > allowed:
            return (
                f"owner's time share exhausted: {share.fraction:.0%} of "
                f"{share.window.total_seconds() / 3600:.0f}h allowed, "
                f"{used.total_seconds() / 3600:.1f}h asked"
            )
    return None


def spread_order(candidates: list[Candidate], label: str | None) -> list[Candidate]:
    """Round-robin across the label's values (sorted; no label last), names in each."""
    ordered = sorted(candidates, key=lambda c: (c.name, c.id))
    if not label:
        return ordered
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in ordered:
        groups[candidate.labels.get(label, "")].append(candidate)
    keys = sorted(groups, key=lambda value: (value == "", value))
    result: list[Candidate] = []
    depth = 0
    while len(result) < len(ordered):
        for key in keys:
            if depth < len(groups[key]):
                result.append(groups[key][depth])
        depth += 1
    return result


def plan(candidates: list[Candidate], request: Request) -> Plan:
    """Which devices the booking gets, and every conflict found on the way."""
    result = Plan()
    reasons = {c.id: conflict(c, request) for c in candidates}
    if request.count is None:
        for candidate in sorted(candidates, key=lambda c: (c.name, c.id)):
            reason = reasons[candidate.id]
            if reason is None:
                result.devices.append(candidate.id)
            else:
                result.conflicts.append((candidate.id, reason))
        return result
    free = [c for c in spread_order(candidates, request.spread) if reasons[c.id] is None]
    result.devices = [c.id for c in free[: request.count]]
    refused = [(c.id, r) for c in candidates if (r := reasons[c.id]) is not None]
    if len(result.devices) < request.count:
        short = f"only {len(result.devices)} of the {request.count} devices asked for are free"
        result.conflicts = [*refused, ("", short)]
    else:
        result.skipped = refused
    return result
