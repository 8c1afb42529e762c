"""A job's per-device rows, paged.

A job on 10,000 devices has 10,000 rows; ``GET /jobs/{id}`` carries only the
first :data:`FIRST_PAGE` of them (with the per-state counts), and
``GET /jobs/{id}/devices`` pages through all, filtered by state. Rows are
read as plain columns and go to JSON without a model per row: their
``services`` are stored in the API's shape already.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import Invalid
from edgefleet.server.jobs.tables import Job, JobDevice
from edgefleet.server.pagination import Page, PageParams, keyset_rows
from edgefleet.server.rollouts import pins as rollout_pins
from edgefleet.server.rollouts.tables import JobRollout
from edgefleet.wire.status import DeviceJobState

DEVICE_STATES: tuple[str, ...] = get_args(DeviceJobState)

FIRST_PAGE = 100
"""How many device rows ``GET /jobs/{id}`` carries (SPEC: at most the first 100)."""


def parse_states(state: str | None) -> list[str] | None:
    """``?state=running,failed`` → the states, each checked; ``None`` for all."""
    if not state:
        return None
    wanted = [s.strip() for s in state.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(DEVICE_STATES))
    if unknown:
        raise Invalid(
            f"unknown device state {', '.join(unknown)}; one of {', '.join(DEVICE_STATES)}",
            field="state",
        )
    return wanted


async def page(
    db: AsyncSession,
    job: Job,
    params: PageParams,
    states: list[str] | None = None,
    *,
    rollout: JobRollout | None,
) -> Page[dict[str, Any]]:
    """The job's devices with their status, oldest row first, as plain dicts in the
    API's shape (a job on 10,000 devices is read as columns, not objects).
    ``rollout`` is the job's rollout row, which the caller has already read."""
    query = (
        select(
            JobDevice.pk,
            Device.id,
            Device.name,
            JobDevice.state,
            JobDevice.error,
            JobDevice.eligible,
            JobDevice.assigned,
            JobDevice.version,
            JobDevice.target_version,
            JobDevice.services,
            JobDevice.updated_at,
            JobDevice.waiting,
        )
        .join(Device, Device.pk == JobDevice.device_pk)
        .where(JobDevice.job_pk == job.pk)
    )
    if states is not None:
        query = query.where(JobDevice.state.in_(states))
    found = await keyset_rows(db, query, JobDevice.pk, params, key=lambda row: int(row[0]))
    items = [
        {
            "device": device_id,
            "name": name,
            "state": state,
            "error": error,
            "eligible": bool(eligible),
            "assigned": bool(assigned),
            "version": version,
            "target_version": target,
            "running_version": version,
            "waiting": waiting,
            "services": services or {},
            "updated_at": _iso(updated),
        }
        for _pk, device_id, name, state, error, eligible, assigned, version, target, services, updated, waiting in found.items
    ]
    # A staged rollout tells the devices it holds back the previous version:
    # that, not the job's new one, is their target.
    held = rollout_pins.held_version(rollout)
    if held is not None:
        version, moved = held
        for item in items:
            if item["device"] not in moved:
                item["target_version"] = version
    return Page(items=items, next=found.next)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
