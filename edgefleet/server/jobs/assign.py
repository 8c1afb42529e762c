"""Which devices a job is on: targets, requirements, time window.

Called when a job is created, upgraded, cancelled, when the fleet changes
(a device enrolls, is relabeled or deleted) and by the scheduler's clock.
Idempotent: running it twice changes nothing the second time, which is what
makes it safe to run from any replica.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.labels import parse_selector
from edgefleet.server.db.base import utcnow
from edgefleet.server.devices import query as device_query
from edgefleet.server.devices.tables import Device
from edgefleet.server.jobs.eligibility import why_not
from edgefleet.server.jobs.tables import Job, JobDevice
from edgefleet.spec.model import AppSpec
from edgefleet.wire.messages import DeviceFacts

TERMINAL = ("cancelled", "expired")


def active(job: Job, now: datetime | None = None) -> bool:
    now = now or utcnow()
    if job.state in TERMINAL:
        return False
    if job.start is not None and job.start > now:
        return False
    return not (job.end is not None and job.end <= now)


async def targets(db: AsyncSession, job: Job) -> list[tuple[int, dict[str, Any]]]:
    """(device pk, reported facts) of the devices the job targets: only the two
    columns eligibility needs, for 10,000 devices as cheaply as for ten."""
    query = select(Device.pk, Device.facts).where(Device.project_pk == job.project_pk)
    if job.selector is not None:
        query = query.where(device_query.selector_clause(parse_selector(job.selector)))
    else:
        query = query.where(Device.id.in_(job.target_devices or []))
    return [(pk, facts or {}) for pk, facts in (await db.execute(query.order_by(Device.pk))).all()]


def _facts_key(facts: dict[str, Any]) -> str:
    """What eligibility depends on, as a cache key: devices of one kind share it."""
    resources = facts.get("resources") or {}
    relevant = {
        "runtimes": facts.get("runtimes"),
        "arch": resources.get("arch"),
        "memory": resources.get("memory"),
        "peripherals": sorted(
            (p.get("kind", ""), p.get("name", "")) for p in facts.get("peripherals") or []
        ),
        "policy": facts.get("policy"),
    }
    return json.dumps(relevant, sort_keys=True, default=str)


async def assign(db: AsyncSession, job: Job, version: str, *, upgraded: bool = False) -> set[int]:
    """Bring job_devices in line with the job; returns the device pks whose
    desired state changed (the caller bumps and pushes them). New rows go in
    as one bulk insert, and devices with the same capabilities are judged once."""
    spec = AppSpec.model_validate(job.resolved)
    existing = {
        row.device_pk: row
        for row in await db.scalars(select(JobDevice).where(JobDevice.job_pk == job.pk))
    }
    wanted = dict(await targets(db, job)) if active(job) else {}
    changed: set[int] = set()
    now = utcnow()
    verdicts: dict[str, str | None] = {}
    new_rows: list[dict[str, Any]] = []
    for pk, facts in wanted.items():
        key = _facts_key(facts)
        if key not in verdicts:
            verdicts[key] = why_not(spec, DeviceFacts.model_validate(facts))
        reason = verdicts[key]
        eligible = reason is None
        error = None if eligible else f"cannot run here: {reason}"
        row = existing.get(pk)
        if row is None:
            new_rows.append(
                {
                    "job_pk": job.pk,
                    "device_pk": pk,
                    "assigned": True,
                    "eligible": eligible,
                    "state": "pending" if eligible else "failed",
                    "error": error,
                    "services": {},
                    "target_version": version,
                    "updated_at": now,
                }
            )
            if eligible:
                changed.add(pk)
            continue
        was = (row.assigned, row.eligible)
        row.assigned = True
        row.eligible = eligible
        if not eligible:
            row.state, row.error = "failed", error
        elif not was[1]:
            row.state, row.error = "pending", None
        if row.target_version != version:
            row.target_version = version
            upgraded = True
        if was != (True, eligible) or (upgraded and eligible):
            changed.add(pk)
    for pk, row in existing.items():
        if pk not in wanted and row.assigned:
            row.assigned = False
            if row.eligible:
                changed.add(pk)
    for start in range(0, len(new_rows), 1000):
        await db.execute(insert(JobDevice), new_rows[start : start + 1000])
    return changed
