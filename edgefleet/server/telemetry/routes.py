"""``GET /devices/{device}/metrics``: a device's health over time.

Any member of the device's project may read it (``read``, like the device
itself); anything outside the caller's projects is 404.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Query

from edgefleet.server.auth.roles import Permission
from edgefleet.server.db.base import utcnow
from edgefleet.server.deps import CallerDep, Db, Paging
from edgefleet.server.errors import Invalid
from edgefleet.server.pagination import encode_cursor
from edgefleet.server.remote import targets
from edgefleet.server.telemetry import query
from edgefleet.server.telemetry.schemas import MetricPoint, MetricsPage

router = APIRouter(tags=["telemetry"])

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
MAX_STEP = 30 * 86_400
DEFAULT_SPAN = timedelta(hours=24)


def duration(text: str, field: str) -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``1h`` or ``2d``; 422 naming ``field`` otherwise."""
    match = _DURATION.match(text.strip())
    if not match:
        raise Invalid(
            f"{field} must be a number of seconds or a duration like 15m, 1h, 2d", field=field
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def moment(text: str | None, field: str, default: datetime) -> datetime:
    """An ISO 8601 time, or a duration meaning that long ago."""
    if text is None or not text.strip():
        return default
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            return utcnow() - timedelta(seconds=duration(text, field))
        except Invalid:
            raise Invalid(
                f"{field} must be an ISO 8601 time or a duration ago like 1h", field=field
            ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def step_seconds(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    seconds = duration(text, "step")
    if not 1 <= seconds <= MAX_STEP:
        raise Invalid(f"step must be between 1 s and {MAX_STEP // 86_400} days", field="step")
    return int(seconds)


@router.get("/devices/{device}/metrics", response_model=MetricsPage)
async def device_metrics(
    device: str,
    caller: CallerDep,
    db: Db,
    page: Paging,
    since: str | None = Query(None, description="ISO time, or a duration ago (1h); default 24h"),
    until: str | None = Query(None, description="ISO time or a duration ago; default now"),
    step: str | None = Query(None, description="average into buckets of this many seconds (15m)"),
) -> MetricsPage:
    now = utcnow()
    start = moment(since, "since", now - DEFAULT_SPAN)
    end = moment(until, "until", now + timedelta(minutes=10))
    seconds = step_seconds(step)
    target = await targets.device(db, caller, device, Permission.READ)
    if page.after:
        start = max(start, query.from_micros(page.after))
    points, next_at = await query.metrics(
        db, target.pk, since=start, until=end, step=seconds, limit=page.limit
    )
    return MetricsPage(
        items=[MetricPoint.of(p) for p in points],
        next=encode_cursor(next_at) if next_at is not None else None,
        step=seconds,
    )
